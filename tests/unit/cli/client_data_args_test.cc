#include "cli/client_data_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lathe::cli {
namespace {

ParsedArgs Parse(const std::vector<std::string>& args, const std::vector<FlagSpec>& flags) {
  auto r = ParseArgs(args, flags);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : ParsedArgs{};
}

ParsedArgs ParseImport(const std::vector<std::string>& args) { return Parse(args, ImportSpecFlags()); }

std::string ErrorOf(const Result<Json>& r) { return r.ok() ? "" : r.status().message(); }

TEST(DatasetRefTest, NameVersionAndLatest) {
  auto plain = ParseDatasetRef("churn", false);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "churn");
  EXPECT_EQ(plain->version, "latest");
  EXPECT_FALSE(plain->explicit_version);
  EXPECT_EQ(VersionPath(*plain), "/datasets/churn/versions/latest");

  auto v = ParseDatasetRef("churn@12", true);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, "12");
  EXPECT_TRUE(v->explicit_version);
  EXPECT_EQ(ParseDatasetRef("churn@007", false)->version, "7");
  EXPECT_EQ(ParseDatasetRef("churn@latest", false)->version, "latest");
  // The last '@' splits; the name is URL-encoded in the path.
  EXPECT_EQ(VersionPath(*ParseDatasetRef("a b@3", false)), "/datasets/a%20b/versions/3");
}

TEST(DatasetRefTest, Errors) {
  auto need = ParseDatasetRef("churn", true);
  ASSERT_FALSE(need.ok());
  EXPECT_NE(need.status().message().find("NAME@VERSION"), std::string::npos);
  for (const char* bad :
       {"", "@1", "x@", "x@0", "x@-1", "x@1.5", "x@abc", "x@99999999999999999999", "x@ 1"}) {
    EXPECT_FALSE(ParseDatasetRef(bad, false).ok()) << bad;
  }
  EXPECT_FALSE(ParseDatasetRef("x@latest", true).ok());  // delete/quarantine want a number
}

TEST(ImportSpecTest, FormatFromExtensionOrFlag) {
  EXPECT_EQ(FormatFromExtension("data/x.CSV"), "csv");
  EXPECT_EQ(FormatFromExtension("x.tsv"), "tsv");
  EXPECT_EQ(FormatFromExtension("x.tab"), "tsv");
  EXPECT_EQ(FormatFromExtension("x.json"), "json");
  EXPECT_EQ(FormatFromExtension("x.jsonl"), "jsonl");
  EXPECT_EQ(FormatFromExtension("x.ndjson"), "jsonl");
  EXPECT_EQ(FormatFromExtension("book.xlsx"), "xlsx");
  EXPECT_EQ(FormatFromExtension("x.txt"), "");
  EXPECT_EQ(FormatFromExtension("noext"), "");
  EXPECT_EQ(FormatFromExtension("dir.csv/file"), "");
  EXPECT_EQ(FormatFromExtension(".csv"), "");

  auto inferred = ImportSpecFromFlags(ParseImport({}), "jsonl");
  ASSERT_TRUE(inferred.ok());
  EXPECT_EQ(*inferred, (Json{{"format", "jsonl"}}));
  auto unknown = ImportSpecFromFlags(ParseImport({}), "");
  EXPECT_EQ((*unknown)["format"], "auto");
  auto flag = ImportSpecFromFlags(ParseImport({"--format", "TSV"}), "csv");
  EXPECT_EQ((*flag)["format"], "tsv");
  EXPECT_NE(
      ErrorOf(ImportSpecFromFlags(ParseImport({"--format", "parquet"}), "")).find("--format must be one of"),
      std::string::npos);
}

TEST(ImportSpecTest, EveryFlagLandsInTheServersSpec) {
  auto a = ParseImport({"--delimiter",
                        ";",
                        "--quote",
                        "'",
                        "--header",
                        "NO",
                        "--encoding",
                        "GB18030",
                        "--bad-rows",
                        "quarantine",
                        "--max-bad-rows",
                        "50",
                        "--hint",
                        "zip=string",
                        "--hint",
                        " id = int ",
                        "--date-format",
                        "day=%d/%m/%Y",
                        "--decimal-comma",
                        "--missing",
                        "-",
                        "--missing",
                        "n/a"});
  auto spec = ImportSpecFromFlags(a, "csv");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  Json want = {{"format", "csv"},
               {"csv", {{"delimiter", ";"}, {"quote", "'"}, {"header", "no"}, {"encoding", "gb18030"}}},
               {"bad_rows", "quarantine"},
               {"max_bad_rows", 50},
               {"hints",
                {{"types", {{"zip", "string"}, {"id", "integer"}}},
                 {"date_formats", {{"day", "%d/%m/%Y"}}},
                 {"decimal_comma", true},
                 {"missing_tokens", {"-", "n/a"}}}}};
  EXPECT_EQ(*spec, want) << spec->dump();

  auto xlsx = ImportSpecFromFlags(ParseImport({"--sheet", "Q3 sales", "--header-row", "2"}), "xlsx");
  ASSERT_TRUE(xlsx.ok());
  EXPECT_EQ((*xlsx)["xlsx"], (Json{{"sheet", "Q3 sales"}, {"header_row", 2}}));
  auto json = ImportSpecFromFlags(ParseImport({"--layout", "array"}), "json");
  EXPECT_EQ((*json)["json"], (Json{{"layout", "array"}}));
  auto tab = ImportSpecFromFlags(ParseImport({"--delimiter", "tab"}), "");
  EXPECT_EQ((*tab)["csv"]["delimiter"], "\t");
  auto escaped = ImportSpecFromFlags(ParseImport({"--delimiter=\\t"}), "csv");
  EXPECT_EQ((*escaped)["csv"]["delimiter"], "\t");
}

TEST(ImportSpecTest, BadValuesAreUsageErrorsNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string format;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"--header", "maybe"}, "csv", "--header must be one of auto, yes, no"},
      {{"--bad-rows", "ignore"}, "csv", "--bad-rows must be one of fail, skip, quarantine"},
      {{"--layout", "tree"}, "json", "--layout must be one of"},
      {{"--delimiter", ";;"}, "csv", "--delimiter expects one character"},
      {{"--delimiter", ""}, "csv", "--delimiter expects one character"},
      {{"--delimiter", "\""}, "csv", "cannot be a quote"},
      {{"--delimiter", ";", "--quote", ";"}, "csv", "must differ"},
      {{"--header-row", "-1"}, "xlsx", "--header-row expects an integer"},
      {{"--header-row", "1001"}, "xlsx", "--header-row expects an integer"},
      {{"--max-bad-rows", "10"}, "csv", "needs --bad-rows skip"},
      {{"--bad-rows", "skip", "--max-bad-rows", "x"}, "csv", "--max-bad-rows expects an integer"},
      {{"--hint", "age"}, "csv", "--hint expects COL=TYPE"},
      {{"--hint", "=int"}, "csv", "--hint expects COL=TYPE"},
      {{"--hint", "age=decimal"}, "csv", "unknown type 'decimal'"},
      {{"--hint", "a=int", "--hint", "a=string"}, "csv", "two types"},
      {{"--date-format", "d"}, "csv", "--date-format expects COL=FORMAT"},
      {{"--date-format", "d="}, "csv", "1-64 characters"},
      {{"--hint", "d=int", "--date-format", "d=%Y"}, "csv", "--date-format and a --hint"},
      {{"--decimal-comma", "--delimiter", ","}, "csv", "--decimal-comma cannot be used"},
      {{"--missing", std::string(65, 'x')}, "csv", "at most 64"},
      {{"--sheet", "S"}, "csv", "--sheet applies to XLSX files, not csv"},
      {{"--header-row", "2"}, "json", "--header-row applies to XLSX"},
      {{"--delimiter", ";"}, "xlsx", "--delimiter applies to CSV/TSV files, not xlsx"},
      {{"--layout", "lines"}, "csv", "--layout applies to JSON"},
  };
  for (const auto& c : cases) {
    const std::string err = ErrorOf(ImportSpecFromFlags(ParseImport(c.args), c.format));
    EXPECT_NE(err.find(c.needle), std::string::npos) << "args " << c.args[0] << ": got '" << err << "'";
  }
  // With the format unknown ("auto"), per-format flags pass through for the server to judge.
  EXPECT_TRUE(ImportSpecFromFlags(ParseImport({"--sheet", "S", "--delimiter", ";"}), "").ok());
}

TEST(ImportSpecTest, HostileValuesDoNotCrashAndAreShownSafely) {
  const std::string nasty = std::string("\x1b[31m", 5) + std::string(10000, 'a') + std::string("\0\xff", 2);
  for (const char* flag : {"--hint", "--date-format", "--header", "--bad-rows", "--delimiter", "--format"}) {
    auto r = ImportSpecFromFlags(ParseImport({flag, nasty}), "csv");
    ASSERT_FALSE(r.ok()) << flag;
    EXPECT_LT(r.status().message().size(), 400u) << flag;
    EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos) << flag;
  }
}

const std::vector<FlagSpec> kRowsFlags = {{"offset", "N", ""}, {"limit", "N", ""},  {"sort", "C", ""},
                                          {"filter", "E", ""}, {"sample", "N", ""}, {"seed", "N", ""}};

TEST(RowsQueryTest, FlagsBecomeEncodedQueryParameters) {
  auto q = RowsQuery(Parse({"--sort", "-income,age", "--filter", "age > 30 and plan = 'pro'", "--sample",
                            "100", "--seed", "7", "--limit", "5"},
                           kRowsFlags));
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(*q,
            "offset=0&limit=5&sort=-income%2Cage&filter=age%20%3E%2030%20and%20plan%20%3D%20%27pro%27&sample="
            "100&seed=7");
  EXPECT_EQ(*RowsQuery(Parse({}, kRowsFlags)), "offset=0&limit=20");
}

TEST(RowsQueryTest, Errors) {
  EXPECT_FALSE(RowsQuery(Parse({"--seed", "1"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--sample", "0"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--limit", "0"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--offset", "-1"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--sort", "a,,b"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--sort", "-"}, kRowsFlags)).ok());
  EXPECT_FALSE(RowsQuery(Parse({"--filter", "  "}, kRowsFlags)).ok());
}

const std::vector<FlagSpec> kConnFlags = {
    {"kind", "K", ""},         {"dsn", "D", ""},          {"path", "P", ""},
    {"url", "U", ""},          {"header", "H", "", true}, {"query", "Q", ""},
    {"timeout-ms", "MS", ""},  {"format", "F", ""},       {"records-pointer", "P", ""},
    {"password-stdin", "", ""}};

TEST(ConnectionBodyTest, EachKind) {
  auto pg = ConnectionBody(Parse({"--kind", "postgres", "--dsn", "host=db dbname=shop user=r", "--query",
                                  "SELECT 1", "--timeout-ms", "5000"},
                                 kConnFlags),
                           std::string("s3cret"));
  ASSERT_TRUE(pg.ok()) << pg.status().message();
  EXPECT_EQ(*pg, (Json{{"kind", "postgres"},
                       {"dsn", "host=db dbname=shop user=r"},
                       {"password", "s3cret"},
                       {"query", "SELECT 1"},
                       {"timeout_ms", 5000}}));
  auto lite = ConnectionBody(Parse({"--kind", "sqlite", "--path", "sales.db"}, kConnFlags), std::nullopt);
  EXPECT_EQ(*lite, (Json{{"kind", "sqlite"}, {"path", "sales.db"}}));
  auto http = ConnectionBody(Parse({"--kind", "http", "--url", "https://api.example.com/x", "--header",
                                    "Authorization: Bearer abc:def", "--header", "X-Team:data",
                                    "--records-pointer", "/data", "--format", "json"},
                                   kConnFlags),
                             std::nullopt);
  ASSERT_TRUE(http.ok()) << http.status().message();
  EXPECT_EQ((*http)["headers"], (Json{{"Authorization", "Bearer abc:def"}, {"X-Team", "data"}}));
  EXPECT_EQ((*http)["records_pointer"], "/data");
  EXPECT_EQ((*http)["url"], "https://api.example.com/x");
}

TEST(ConnectionBodyTest, Errors) {
  auto err = [](const std::vector<std::string>& args) {
    auto r = ConnectionBody(Parse(args, kConnFlags), std::nullopt);
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err({}).find("--kind is required"), std::string::npos);
  EXPECT_NE(err({"--kind", "mysql"}).find("--kind must be one of"), std::string::npos);
  EXPECT_NE(err({"--kind", "postgres"}).find("--dsn is required"), std::string::npos);
  EXPECT_NE(err({"--kind", "postgres", "--dsn", "host=x password=y"}).find("must not hold the password"),
            std::string::npos);
  EXPECT_NE(err({"--kind", "postgres", "--dsn", "postgresql://u:PassWord@h/db"}).find("password"),
            std::string::npos);
  EXPECT_NE(err({"--kind", "postgres", "--dsn", "h", "--url", "http://x"}).find("--url does not apply"),
            std::string::npos);
  EXPECT_NE(err({"--kind", "sqlite"}).find("--path is required"), std::string::npos);
  EXPECT_NE(err({"--kind", "sqlite", "--path", "a.db", "--password-stdin"}).find("does not apply"),
            std::string::npos);
  EXPECT_NE(err({"--kind", "http", "--url", "ftp://x"}).find("http:// or https://"), std::string::npos);
  EXPECT_NE(err({"--kind", "http", "--header", "NoColon"}).find("\"Name: value\""), std::string::npos);
  EXPECT_NE(err({"--kind", "http", "--header", "Bad Name: v"}).find("not a header name"), std::string::npos);
  EXPECT_NE(err({"--kind", "http", "--header", "X: a\nb"}).find("control character"), std::string::npos);
  EXPECT_NE(err({"--kind", "http", "--records-pointer", "data"}).find("JSON pointer"), std::string::npos);
  EXPECT_NE(err({"--kind", "sqlite", "--path", "a", "--timeout-ms", "5"}).find("--timeout-ms"),
            std::string::npos);
}

TEST(SourceJsonTest, AcceptsSourcesRefusesPasswords) {
  auto s = ParseSourceJson(R"({"kind":"sqlite","path":"a.db","query":"SELECT 1"})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["kind"], "sqlite");
  EXPECT_TRUE(ParseSourceJson(R"({"connection":"wh","query":"SELECT 1"})").ok());
  EXPECT_NE(
      ParseSourceJson(R"({"kind":"postgres","dsn":"h","password":"x"})").status().message().find("password"),
      std::string::npos);
  EXPECT_FALSE(ParseSourceJson("[1]").ok());
  EXPECT_FALSE(ParseSourceJson("{}").ok());
  EXPECT_FALSE(ParseSourceJson("{\"kind\":").ok());
  EXPECT_FALSE(ParseSourceJson(std::string(100, '[')).ok());  // deeper than the limit: an error, not a crash
}

TEST(LabelAssignmentTest, RowEqualsLabel) {
  EXPECT_EQ(*ParseLabelAssignment("5=spam"), (Json{{"row", 5}, {"label", "spam"}}));
  EXPECT_EQ(*ParseLabelAssignment("0=a=b"), (Json{{"row", 0}, {"label", "a=b"}}));
  for (const char* bad : {"5", "=spam", "x=spam", "-1=spam", "5=", "1.5=a", "99999999999999999999=a"}) {
    EXPECT_FALSE(ParseLabelAssignment(bad).ok()) << bad;
  }
}

TEST(SplitListTest, CommaSeparated) {
  EXPECT_EQ(*SplitList("labels", "spam, ham,eggs"), (std::vector<std::string>{"spam", "ham", "eggs"}));
  EXPECT_FALSE(SplitList("labels", "a,,b").ok());
  EXPECT_FALSE(SplitList("labels", "").ok());
  EXPECT_FALSE(SplitList("labels", "a,").ok());
}

TEST(StepsDocumentTest, ArrayOrObject) {
  auto arr = ParseStepsDocument(R"([{"op":"drop_columns","params":{"columns":["id"]}}])");
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(arr->size(), 1u);
  auto obj = ParseStepsDocument(R"({"name":"x","steps":[{"op":"dedupe"}]})");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ((*obj)[0]["op"], "dedupe");
  auto bad_step = ParseStepsDocument(R"([{"op":"a"},{"params":{}}])");
  ASSERT_FALSE(bad_step.ok());
  EXPECT_NE(bad_step.status().message().find("step 2"), std::string::npos);
  EXPECT_FALSE(ParseStepsDocument("{\"steps\": 3}").ok());
  EXPECT_FALSE(ParseStepsDocument("[{\"op\":").ok());  // truncated
  EXPECT_FALSE(ParseStepsDocument("").ok());
}

const std::vector<FlagSpec> kSettingsFlags = {
    {"set", "J", ""},         {"target", "C", ""},         {"contract", "F", ""},
    {"no-contract", "", ""},  {"enforce", "", ""},         {"no-enforce", "", ""},
    {"tag", "C=T", "", true}, {"retention-days", "N", ""}, {"description", "T", ""}};

TEST(SettingsMergeTest, ChangesOnlyWhatTheFlagsSay) {
  Json current = {{"target", "churned"},
                  {"contract", {{"columns", {{"age", {{"min", 0}}}}}}},
                  {"enforce_contract", false},
                  {"tags", {{"email", "personal"}}},
                  {"retention_days", 0},
                  {"description", "d"},
                  {"future_key", 1}};
  auto a = Parse({"--tag", "phone=PERSONAL", "--tag", "email=none", "--retention-days", "90", "--enforce"},
                 kSettingsFlags);
  EXPECT_TRUE(ChangesDatasetSettings(a));
  auto m = MergeDatasetSettings(current, a, std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)["target"], "churned");
  EXPECT_EQ((*m)["tags"], (Json{{"phone", "personal"}}));
  EXPECT_EQ((*m)["retention_days"], 90);
  EXPECT_EQ((*m)["enforce_contract"], true);
  EXPECT_EQ((*m)["contract"], current["contract"]);
  EXPECT_FALSE(m->contains("future_key"));

  Json contract = {{"columns", {{"plan", {{"allowed", {"a", "b"}}}}}}};
  auto c = MergeDatasetSettings(current, Parse({"--contract", "f.json", "--target", ""}, kSettingsFlags),
                                contract);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)["contract"], contract);
  EXPECT_TRUE((*c)["target"].is_null());
  // A file holding the whole settings document works too.
  auto wrapped = MergeDatasetSettings(current, Parse({"--contract", "f.json"}, kSettingsFlags),
                                      Json{{"contract", contract}});
  EXPECT_EQ((*wrapped)["contract"], contract);
  auto none = MergeDatasetSettings(current, Parse({"--no-contract"}, kSettingsFlags), std::nullopt);
  EXPECT_EQ((*none)["contract"], Json::object());
  EXPECT_EQ((*none)["enforce_contract"], false);

  auto set = MergeDatasetSettings(current, Parse({"--set", R"({"retention_days": 7})"}, kSettingsFlags),
                                  std::nullopt);
  EXPECT_EQ(*set, (Json{{"retention_days", 7}}));
  EXPECT_FALSE(ChangesDatasetSettings(Parse({}, kSettingsFlags)));
}

TEST(SettingsMergeTest, Errors) {
  Json empty = {{"contract", Json::object()}};
  auto err = [&](const std::vector<std::string>& args) {
    auto r = MergeDatasetSettings(empty, Parse(args, kSettingsFlags), std::nullopt);
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err({"--enforce"}).find("--enforce needs a contract"), std::string::npos);
  EXPECT_NE(err({"--enforce", "--no-enforce"}).find("not both"), std::string::npos);
  EXPECT_NE(err({"--tag", "x=secret"}).find("--tag must be one of"), std::string::npos);
  EXPECT_NE(err({"--tag", "x"}).find("--tag expects KEY=VALUE"), std::string::npos);
  EXPECT_NE(err({"--retention-days", "-3"}).find("--retention-days"), std::string::npos);
  EXPECT_NE(err({"--set", "{", "--target", "x"}).find("--set replaces all settings"), std::string::npos);
  EXPECT_NE(err({"--set", "{"}).find("not valid JSON"), std::string::npos);
  EXPECT_NE(err({"--set", "[]"}).find("JSON object"), std::string::npos);
}

TEST(HeaderFlagTest, TrimsAndValidates) {
  auto h = ParseHeaderFlag("  X-Api-Key :  abc def ");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->first, "X-Api-Key");
  EXPECT_EQ(h->second, "abc def");
  EXPECT_FALSE(ParseHeaderFlag(": v").ok());
  EXPECT_FALSE(ParseHeaderFlag("X\x01Y: v").ok());
}

}  // namespace
}  // namespace lathe::cli
