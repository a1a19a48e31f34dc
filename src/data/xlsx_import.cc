#include "data/xlsx_import.h"

#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <pugixml.hpp>
#include <unordered_map>

#include "data/typed_builder.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr uint64_t kRatioCheckBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxRatio = 500;
constexpr size_t kMaxRowXmlBytes = size_t{64} << 20;
constexpr int64_t kMaxColumns = 16384;  // XFD
constexpr size_t kReadChunkBytes = size_t{1} << 20;

Status Invalid(const std::string& m) { return Status::InvalidArgument(m); }

// Compares an element or attribute name without its namespace prefix.
bool LocalNameIs(const char* name, const char* local) {
  const char* colon = std::strrchr(name, ':');
  return std::strcmp(colon ? colon + 1 : name, local) == 0;
}

pugi::xml_node Child(pugi::xml_node n, const char* local) {
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && LocalNameIs(c.name(), local)) return c;
  }
  return {};
}

pugi::xml_attribute Attr(pugi::xml_node n, const char* local) {
  for (pugi::xml_attribute a = n.first_attribute(); a; a = a.next_attribute()) {
    if (LocalNameIs(a.name(), local)) return a;
  }
  return {};
}

// Text of <t> children, directly or inside rich-text runs <r>; phonetic runs <rPh> are not part of it.
void AppendRichText(pugi::xml_node n, std::string* out) {
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    if (LocalNameIs(c.name(), "t")) {
      *out += c.text().get();
    } else if (LocalNameIs(c.name(), "r")) {
      AppendRichText(c, out);
    }
  }
}

// Checks the file's first bytes before handing it to libzip, for clear messages on the usual mistakes.
Status SniffContainer(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::NotFound("input file " + path + " does not exist");
    return Invalid("cannot open " + path);
  }
  std::string head(1 << 16, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(f.gcount()));
  if (head.empty()) return Invalid("the file is empty, not an .xlsx workbook");
  static const char kOle2[] = "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
  if (head.size() >= 8 && std::memcmp(head.data(), kOle2, 8) == 0) {
    // Encrypted OOXML lives in an OLE2 container with an "EncryptionInfo" stream (names are UTF-16LE).
    static const char kEncInfo[] = "E\0n\0c\0r\0y\0p\0t\0i\0o\0n\0I\0n\0f\0o\0";
    std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string all = head + content.substr(0, size_t{8} << 20);
    if (all.find(std::string(kEncInfo, sizeof(kEncInfo) - 1)) != std::string::npos) {
      return Invalid("password-protected workbooks are not supported; remove the password and save again");
    }
    return Invalid("this is an .xls file; save it as .xlsx");
  }
  if (head.size() < 4 || head[0] != 'P' || head[1] != 'K') {
    return Invalid("not an .xlsx workbook (the file is not a zip archive)");
  }
  return Status::Ok();
}

class Workbook {
 public:
  ~Workbook() {
    if (zip_ != nullptr) zip_discard(zip_);
  }

  Status Open(const std::string& path, uint64_t max_bytes) {
    RETURN_IF_ERROR(SniffContainer(path));
    max_bytes_ = max_bytes;
    int err = 0;
    zip_ = zip_open(path.c_str(), ZIP_RDONLY, &err);
    if (zip_ == nullptr) {
      zip_error_t ze;
      zip_error_init_with_code(&ze, err);
      std::string msg = zip_error_strerror(&ze);
      zip_error_fini(&ze);
      return Invalid("corrupt .xlsx file (zip archive): " + msg);
    }
    ASSIGN_OR_RETURN(std::string wb, ReadPart("xl/workbook.xml"));
    pugi::xml_document doc;
    RETURN_IF_ERROR(ParseXml("xl/workbook.xml", wb, &doc));
    pugi::xml_node root = doc.document_element();
    pugi::xml_node pr = Child(root, "workbookPr");
    std::string d1904 = Attr(pr, "date1904").value();
    date1904_ = d1904 == "1" || d1904 == "true";
    std::vector<std::pair<std::string, std::string>> sheet_ids;
    for (pugi::xml_node s = Child(Child(root, "sheets"), "sheet"); s; s = s.next_sibling()) {
      if (s.type() != pugi::node_element || !LocalNameIs(s.name(), "sheet")) continue;
      sheet_ids.emplace_back(Attr(s, "name").value(), Attr(s, "id").value());
    }
    if (sheet_ids.empty()) return Invalid("xl/workbook.xml lists no sheets");
    // Relationships: sheet ids -> part names, and where shared strings and styles live.
    std::unordered_map<std::string, std::string> targets;
    std::string rels_name = "xl/_rels/workbook.xml.rels";
    ASSIGN_OR_RETURN(std::string rels, ReadPart(rels_name));
    pugi::xml_document rdoc;
    RETURN_IF_ERROR(ParseXml(rels_name, rels, &rdoc));
    for (pugi::xml_node r = rdoc.document_element().first_child(); r; r = r.next_sibling()) {
      if (r.type() != pugi::node_element) continue;
      std::string target = ResolveTarget(Attr(r, "Target").value());
      std::string type = Attr(r, "Type").value();
      targets[Attr(r, "Id").value()] = target;
      auto ends = [&](const char* suffix) {
        size_t n = std::strlen(suffix);
        return type.size() >= n && type.compare(type.size() - n, n, suffix) == 0;
      };
      if (ends("/sharedStrings")) shared_strings_part_ = target;
      if (ends("/styles")) styles_part_ = target;
    }
    for (const auto& [name, id] : sheet_ids) {
      auto it = targets.find(id);
      if (it == targets.end()) {
        return Invalid("xl/workbook.xml: sheet \"" + name + "\" has no relationship in " + rels_name);
      }
      sheets_.push_back(Sheet{name, it->second});
    }
    return Status::Ok();
  }

  struct Sheet {
    std::string name;
    std::string part;
  };
  const std::vector<Sheet>& sheets() const { return sheets_; }
  bool date1904() const { return date1904_; }
  zip_t* zip() const { return zip_; }
  uint64_t max_bytes() const { return max_bytes_; }

  // Shared strings, if the workbook has them.
  Status LoadSharedStrings(std::vector<std::string>* out) {
    if (shared_strings_part_.empty()) {
      if (zip_name_locate(zip_, "xl/sharedStrings.xml", 0) < 0) return Status::Ok();
      shared_strings_part_ = "xl/sharedStrings.xml";
    }
    ASSIGN_OR_RETURN(std::string xml, ReadPart(shared_strings_part_));
    pugi::xml_document doc;
    RETURN_IF_ERROR(ParseXml(shared_strings_part_, xml, &doc));
    xml.clear();
    xml.shrink_to_fit();
    for (pugi::xml_node si = doc.document_element().first_child(); si; si = si.next_sibling()) {
      if (si.type() != pugi::node_element || !LocalNameIs(si.name(), "si")) continue;
      std::string s;
      AppendRichText(si, &s);
      out->push_back(std::move(s));
    }
    return Status::Ok();
  }

  // For each cell style (cellXfs index): does its number format show a date?
  Status LoadDateStyles(std::vector<uint8_t>* out) {
    if (styles_part_.empty()) {
      if (zip_name_locate(zip_, "xl/styles.xml", 0) < 0) return Status::Ok();
      styles_part_ = "xl/styles.xml";
    }
    ASSIGN_OR_RETURN(std::string xml, ReadPart(styles_part_));
    pugi::xml_document doc;
    RETURN_IF_ERROR(ParseXml(styles_part_, xml, &doc));
    pugi::xml_node root = doc.document_element();
    std::unordered_map<int64_t, bool> custom;
    for (pugi::xml_node f = Child(Child(root, "numFmts"), "numFmt"); f; f = f.next_sibling()) {
      if (f.type() != pugi::node_element) continue;
      custom[Attr(f, "numFmtId").as_llong(-1)] = FormatIsDate(Attr(f, "formatCode").value());
    }
    for (pugi::xml_node xf = Child(Child(root, "cellXfs"), "xf"); xf; xf = xf.next_sibling()) {
      if (xf.type() != pugi::node_element) continue;
      int64_t id = Attr(xf, "numFmtId").as_llong(0);
      auto it = custom.find(id);
      bool date = it != custom.end() ? it->second : ((id >= 14 && id <= 22) || (id >= 45 && id <= 47));
      out->push_back(date ? 1 : 0);
    }
    return Status::Ok();
  }

  static bool FormatIsDate(std::string_view code) {
    for (size_t i = 0; i < code.size(); ++i) {
      char c = code[i];
      if (c == '"') {
        size_t e = code.find('"', i + 1);
        if (e == std::string_view::npos) return false;
        i = e;
      } else if (c == '[') {
        size_t e = code.find(']', i + 1);
        if (e == std::string_view::npos) return false;
        i = e;
      } else if (c == '\\' || c == '_' || c == '*') {
        ++i;  // escaped character, spacing or fill: not a directive
      } else if (c == ';') {
        break;  // the first section decides
      } else {
        char l = static_cast<char>(c | 0x20);
        if (l == 'y' || l == 'm' || l == 'd' || l == 'h' || l == 's') return true;
      }
    }
    return false;
  }

  // Opens an entry for streaming after the size checks.
  Result<zip_file_t*> OpenEntry(const std::string& name, uint64_t* size) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(zip_, name.c_str(), 0, &st) != 0) {
      return Invalid("the workbook has no part " + name + " (the file is incomplete or not an .xlsx workbook)");
    }
    if (st.valid & ZIP_STAT_ENCRYPTION_METHOD && st.encryption_method != ZIP_EM_NONE) {
      return Invalid("password-protected workbooks are not supported");
    }
    if ((st.valid & ZIP_STAT_SIZE) && st.size > max_bytes_) {
      return Invalid("part " + name + " inflates to " + std::to_string(st.size) + " bytes, over the limit of " +
                     std::to_string(max_bytes_) + " (max_uncompressed_bytes)");
    }
    if ((st.valid & ZIP_STAT_SIZE) && (st.valid & ZIP_STAT_COMP_SIZE) && st.size > kRatioCheckBytes &&
        st.size / std::max<uint64_t>(st.comp_size, 1) > kMaxRatio) {
      return Invalid("part " + name + " has an implausible compression ratio (" +
                     std::to_string(st.size / std::max<uint64_t>(st.comp_size, 1)) +
                     ":1); refusing a possible zip bomb");
    }
    zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
    if (f == nullptr) {
      int ze = zip_error_code_zip(zip_get_error(zip_));
      if (ze == ZIP_ER_NOPASSWD || ze == ZIP_ER_WRONGPASSWD) {
        return Invalid("password-protected workbooks are not supported");
      }
      return Invalid("cannot read part " + name + ": " + zip_strerror(zip_));
    }
    *size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
    return f;
  }

  // Reads up to n bytes; counts them against the limit whatever the header claimed.
  Result<size_t> ReadSome(zip_file_t* f, const std::string& name, char* dst, size_t n, uint64_t* total) {
    zip_int64_t r = zip_fread(f, dst, n);
    if (r < 0) return Invalid("corrupt part " + name + ": " + zip_file_strerror(f));
    *total += static_cast<uint64_t>(r);
    if (*total > max_bytes_) {
      return Invalid("part " + name + " inflates to more than " + std::to_string(max_bytes_) +
                     " bytes (max_uncompressed_bytes)");
    }
    return static_cast<size_t>(r);
  }

  Result<std::string> ReadPart(const std::string& name) {
    uint64_t size = 0;
    ASSIGN_OR_RETURN(zip_file_t * f, OpenEntry(name, &size));
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> guard(f, zip_fclose);
    std::string out;
    out.reserve(static_cast<size_t>(std::min<uint64_t>(size, 64 << 20)));
    uint64_t total = 0;
    std::vector<char> buf(kReadChunkBytes);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, ReadSome(f, name, buf.data(), buf.size(), &total));
      if (n == 0) break;
      out.append(buf.data(), n);
    }
    return out;
  }

  static Status ParseXml(const std::string& part, const std::string& xml, pugi::xml_document* doc) {
    pugi::xml_parse_result r = doc->load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!r) {
      return Invalid("XML error in " + part + " at byte " + std::to_string(r.offset) + ": " + r.description());
    }
    if (!doc->document_element()) return Invalid("XML error in " + part + ": no root element");
    return Status::Ok();
  }

 private:
  static std::string ResolveTarget(std::string t) {
    if (!t.empty() && t[0] == '/') return t.substr(1);
    std::string base = "xl/";
    while (t.rfind("../", 0) == 0) {
      t = t.substr(3);
      base.clear();
    }
    return base + t;
  }

  zip_t* zip_ = nullptr;
  uint64_t max_bytes_ = 0;
  bool date1904_ = false;
  std::vector<Sheet> sheets_;
  std::string shared_strings_part_, styles_part_;
};

// "BC12" -> column 55 (1-based), row 12; false if malformed.
bool ParseCellRef(std::string_view ref, int64_t* col, int64_t* row) {
  size_t i = 0;
  int64_t c = 0;
  while (i < ref.size() && ref[i] >= 'A' && ref[i] <= 'Z' && c <= kMaxColumns) c = c * 26 + (ref[i++] - 'A' + 1);
  if (i == 0 || c > kMaxColumns) return false;
  int64_t r = 0;
  size_t digits = 0;
  while (i < ref.size() && ref[i] >= '0' && ref[i] <= '9' && r < (int64_t{1} << 40)) r = r * 10 + (ref[i++] - '0'), ++digits;
  if (i != ref.size() || (digits > 0 && r == 0)) return false;
  *col = c;
  *row = digits ? r : 0;
  return true;
}

std::string ColumnLetters(int64_t col) {
  std::string s;
  while (col > 0) {
    s.insert(s.begin(), static_cast<char>('A' + (col - 1) % 26));
    col = (col - 1) / 26;
  }
  return s;
}

// Excel serial day number -> UTC micros (millisecond precision); false outside years 1900..9999.
bool SerialToMicros(double serial, bool date1904, int64_t* micros) {
  if (!std::isfinite(serial) || serial < 0 || serial > 2958466) return false;
  double days;
  if (date1904) {
    days = serial - 24107;  // 1904-01-01 is serial 0
  } else {
    // 1900 system: serial 1 is 1900-01-01 and serial 60 the non-existent 1900-02-29 (read as 02-28, as
    // Excel-compatible readers do); from 61 on, days since 1899-12-30.
    double s = serial >= 1 && serial < 61 ? (serial < 60 ? serial + 1 : 60) : serial;
    days = s - 25569;  // 1970-01-01 is serial 25569
  }
  *micros = static_cast<int64_t>(std::llround(days * 86400000.0)) * 1000;
  return true;
}

// A parsed worksheet row: its cells as values the typed builder understands.
struct RowCell {
  int64_t column = 0;  // 1-based
  CellValue value;
  std::string error;   // an error cell (#DIV/0! ...): the row is bad
};

class SheetReader {
 public:
  SheetReader(Workbook& wb, const std::vector<std::string>& strings, const std::vector<uint8_t>& date_styles)
      : wb_(wb), strings_(strings), date_styles_(date_styles) {}
  ~SheetReader() {
    if (file_ != nullptr) zip_fclose(file_);
  }

  Status Open(const std::string& part) {
    part_ = part;
    ASSIGN_OR_RETURN(file_, wb_.OpenEntry(part, &declared_));
    return Status::Ok();
  }
  double fraction() const {
    return declared_ > 0 ? std::min(1.0, static_cast<double>(inflated_) / static_cast<double>(declared_)) : 0.0;
  }

  // The next <row>: its number and cells. False at the end of sheetData.
  // Cell texts stay valid until the next call.
  Result<bool> Next(int64_t* row_number, std::vector<RowCell>* cells, std::string* raw) {
    cells->clear();
    texts_.clear();
    for (;;) {
      if (prefix_.empty() && !root_seen_) RETURN_IF_ERROR(FindRoot());
      if (done_) return false;
      size_t start = FindRowStart();
      if (start == std::string::npos) {
        if (eof_) {
          if (!sheet_data_seen_) return Invalid("XML error in " + part_ + ": no <sheetData> element");
          if (!sheet_data_closed_) return Invalid("XML error in " + part_ + ": the file ends inside <sheetData>");
          return false;
        }
        RETURN_IF_ERROR(More());
        continue;
      }
      size_t tag_end = buf_.find('>', start);
      if (tag_end == std::string::npos) {
        if (eof_) return Invalid("XML error in " + part_ + ": the file ends inside a <row> tag");
        if (buf_.size() - pos_ > kMaxRowXmlBytes) return Invalid(part_ + ": a row is larger than 64 MB of XML");
        RETURN_IF_ERROR(More());
        continue;
      }
      size_t end;
      if (buf_[tag_end - 1] == '/') {
        end = tag_end + 1;
      } else {
        end = buf_.find(row_close_, tag_end);
        if (end == std::string::npos) {
          if (eof_) return Invalid("XML error in " + part_ + ": the file ends inside a <row>");
          if (buf_.size() - pos_ > kMaxRowXmlBytes) return Invalid(part_ + ": a row is larger than 64 MB of XML");
          RETURN_IF_ERROR(More());
          continue;
        }
        end += row_close_.size();
      }
      std::string_view frag(buf_.data() + start, end - start);
      pos_ = end;
      ++rows_seen_;
      raw->assign(frag.substr(0, 64 << 10));
      RETURN_IF_ERROR(ParseRow(frag, row_number, cells));
      return true;
    }
  }

 private:
  Status More() {
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    size_t old = buf_.size();
    buf_.resize(old + kReadChunkBytes);
    auto n = wb_.ReadSome(file_, part_, buf_.data() + old, kReadChunkBytes, &inflated_);
    if (!n.ok()) {
      buf_.resize(old);
      return n.TakeStatus();
    }
    buf_.resize(old + *n);
    if (*n == 0) eof_ = true;
    return Status::Ok();
  }

  // Reads the root element's name to learn the namespace prefix rows use ("x:" in some writers).
  Status FindRoot() {
    for (;;) {
      size_t p = 0;
      while ((p = buf_.find('<', p)) != std::string::npos) {
        if (p + 1 < buf_.size() && (buf_[p + 1] == '?' || buf_[p + 1] == '!')) {
          ++p;
          continue;
        }
        size_t e = buf_.find_first_of(" \t\r\n/>", p + 1);
        if (e == std::string::npos) break;
        std::string name = buf_.substr(p + 1, e - p - 1);
        size_t colon = name.find(':');
        prefix_ = colon == std::string::npos ? std::string() : name.substr(0, colon + 1);
        if (!LocalNameIs(name.c_str(), "worksheet")) {
          return Invalid("XML error in " + part_ + ": the root element is <" + name.substr(0, 40) +
                         ">, not <worksheet>");
        }
        root_seen_ = true;
        row_open_ = "<" + prefix_ + "row";
        row_close_ = "</" + prefix_ + "row>";
        return Status::Ok();
      }
      if (eof_) return Invalid("XML error in " + part_ + ": no <worksheet> element");
      if (buf_.size() > kMaxRowXmlBytes) return Invalid("XML error in " + part_ + ": no <worksheet> element");
      RETURN_IF_ERROR(More());
    }
  }

  // Position of the next "<row" start tag at or after pos_, or npos if more input is needed. Marks the end
  // of sheetData.
  size_t FindRowStart() {
    if (!sheet_data_seen_) {
      std::string open = "<" + prefix_ + "sheetData";
      size_t p = buf_.find(open, pos_);
      if (p == std::string::npos) {
        if (buf_.size() > pos_ + open.size()) pos_ = buf_.size() - open.size();
        return std::string::npos;
      }
      size_t e = buf_.find('>', p);
      if (e == std::string::npos) return std::string::npos;
      sheet_data_seen_ = true;
      pos_ = e + 1;
      if (buf_[e - 1] == '/') {
        sheet_data_closed_ = true;
        done_ = true;
        return std::string::npos;
      }
    }
    std::string close = "</" + prefix_ + "sheetData>";
    for (size_t p = pos_;;) {
      size_t r = buf_.find(row_open_, p);
      // Only the stretch before the next row can hold the end of sheetData (keeps this linear).
      std::string_view before(buf_.data() + p, (r == std::string::npos ? buf_.size() : r) - p);
      size_t c = before.find(close);
      if (c != std::string_view::npos) {
        sheet_data_closed_ = true;
        done_ = true;
        return std::string::npos;
      }
      if (r == std::string::npos || r + row_open_.size() >= buf_.size()) return std::string::npos;
      char next = buf_[r + row_open_.size()];
      if (next == ' ' || next == '>' || next == '/' || next == '\t' || next == '\r' || next == '\n') return r;
      p = r + 1;  // <rowBreaks> and the like
    }
  }

  Status ParseRow(std::string_view frag, int64_t* row_number, std::vector<RowCell>* cells) {
    doc_.reset();
    pugi::xml_parse_result pr = doc_.load_buffer(frag.data(), frag.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!pr) {
      return Invalid("XML error in " + part_ + " in row " + std::to_string(last_row_ + 1) + ": " + pr.description());
    }
    pugi::xml_node row = doc_.document_element();
    int64_t r = Attr(row, "r").as_llong(0);
    if (r <= 0) r = last_row_ + 1;
    if (r <= last_row_) {
      return Invalid("XML error in " + part_ + ": row " + std::to_string(r) + " comes after row " +
                     std::to_string(last_row_));
    }
    if (r > (int64_t{1} << 40)) return Invalid(part_ + ": row number " + std::to_string(r) + " is out of range");
    last_row_ = r;
    *row_number = r;
    int64_t next_col = 1;
    for (pugi::xml_node c = row.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element || !LocalNameIs(c.name(), "c")) continue;
      RowCell cell;
      int64_t col = next_col, ref_row = 0;
      if (pugi::xml_attribute ref = Attr(c, "r")) {
        if (!ParseCellRef(ref.value(), &col, &ref_row) || (ref_row != 0 && ref_row != r)) {
          return Invalid(part_ + ": row " + std::to_string(r) + " holds a cell with the bad reference \"" +
                         std::string(ref.value()).substr(0, 20) + "\"");
        }
      }
      if (col < next_col) {
        return Invalid(part_ + ": row " + std::to_string(r) + ": cell " + ColumnLetters(col) + std::to_string(r) +
                       " is out of order");
      }
      if (col > kMaxColumns) return Invalid(part_ + ": row " + std::to_string(r) + " has more than 16384 columns");
      next_col = col + 1;
      cell.column = col;
      std::string_view type = Attr(c, "t").value();
      pugi::xml_node v = Child(c, "v");
      const char* vtext = v.text().get();
      if (type == "s") {
        if (!v) continue;
        char* end = nullptr;
        unsigned long long idx = std::strtoull(vtext, &end, 10);
        if (end == vtext || *end != '\0' || idx >= strings_.size()) {
          cell.error = "refers to shared string " + std::string(vtext).substr(0, 20) + ", which does not exist";
        } else {
          cell.value.kind = CellKind::kString;
          cell.value.text = strings_[idx];
        }
      } else if (type == "inlineStr") {
        texts_.emplace_back();
        AppendRichText(Child(c, "is"), &texts_.back());
        cell.value.kind = CellKind::kString;
        cell.value.text = texts_.back();
      } else if (type == "str") {
        if (!v) continue;
        cell.value.kind = CellKind::kString;
        cell.value.text = vtext;
      } else if (type == "b") {
        if (!v) continue;
        std::string_view t = TrimBlanks(vtext);
        if (t != "0" && t != "1" && t != "true" && t != "false") {
          cell.error = "holds the boolean \"" + std::string(t.substr(0, 20)) + "\"";
        } else {
          cell.value.kind = CellKind::kBool;
          cell.value.i = (t == "1" || t == "true") ? 1 : 0;
        }
      } else if (type == "e") {
        cell.error = std::string("holds the error ") + (v ? vtext : "value");
      } else if (type == "d") {
        if (!v) continue;
        cell.value.kind = CellKind::kDatetime;
        if (!ParseDatetimeMicros(TrimBlanks(vtext), &cell.value.i)) cell.error = "holds an invalid ISO date";
      } else if (type.empty() || type == "n") {
        if (!v) continue;
        std::string_view t = TrimBlanks(vtext);
        if (t.empty()) continue;
        uint64_t style = Attr(c, "s").as_ullong(0);
        bool is_date = style < date_styles_.size() && date_styles_[style];
        int64_t iv;
        double fv;
        if (!is_date && ParseInt64(t, &iv) == IntParse::kOk) {
          cell.value.kind = CellKind::kInt;
          cell.value.i = iv;
          cell.value.text = t;
        } else if (ParseFloat64(t, &fv)) {
          if (is_date) {
            cell.value.kind = CellKind::kDatetime;
            if (!SerialToMicros(fv, wb_.date1904(), &cell.value.i)) cell.error = "holds a date out of range";
          } else {
            cell.value.kind = CellKind::kFloat;
            cell.value.f = fv;
            cell.value.text = t;
          }
        } else {
          cell.error = "holds the malformed number \"" + std::string(t.substr(0, 20)) + "\"";
        }
      } else {
        cell.error = "has the unknown cell type \"" + std::string(type.substr(0, 20)) + "\"";
      }
      cells->push_back(std::move(cell));
    }
    return Status::Ok();
  }

  Workbook& wb_;
  const std::vector<std::string>& strings_;
  const std::vector<uint8_t>& date_styles_;
  std::string part_;
  zip_file_t* file_ = nullptr;
  uint64_t declared_ = 0, inflated_ = 0;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false, root_seen_ = false, sheet_data_seen_ = false, sheet_data_closed_ = false, done_ = false;
  std::string prefix_, row_open_, row_close_;
  int64_t last_row_ = 0;
  int64_t rows_seen_ = 0;
  pugi::xml_document doc_;
  std::deque<std::string> texts_;
};

std::string CellText(const CellValue& v) {
  switch (v.kind) {
    case CellKind::kMissing: return {};
    case CellKind::kString:
    case CellKind::kText: return std::string(v.text);
    case CellKind::kInt: return v.text.empty() ? std::to_string(v.i) : std::string(v.text);
    case CellKind::kFloat: return v.text.empty() ? FormatDouble(v.f) : std::string(v.text);
    case CellKind::kBool: return v.i ? "true" : "false";
    case CellKind::kDatetime: return FormatDatetimeMicros(v.i);
  }
  return {};
}

Result<const Workbook::Sheet*> PickSheet(const Workbook& wb, const std::string& wanted) {
  if (wanted.empty()) return &wb.sheets().front();
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& s : wb.sheets()) {
    if (s.name == wanted) return &s;
  }
  for (const auto& s : wb.sheets()) {
    if (lower(s.name) == lower(wanted)) return &s;
  }
  std::string list;
  for (const auto& s : wb.sheets()) list += (list.empty() ? "\"" : ", \"") + s.name + "\"";
  return Status::InvalidArgument("the workbook has no sheet \"" + wanted.substr(0, 100) + "\"; its sheets: " + list)
      .WithDetail(ErrorDetail::Field("sheet", "no such sheet; the workbook has " + list));
}

Result<ImportResult> Import(const std::string& input_path, const std::string& output_path, const XlsxOptions& opts,
                            const ImportOptions& import, const ProgressFn& progress, const CancelFn& cancel) {
  RETURN_IF_ERROR(CheckBadRowOptions(import));
  for (const auto& [col, fmt] : import.hints.date_formats) RETURN_IF_ERROR(ValidateDateFormat(col, fmt));
  if (opts.header_row < 0) {
    return Status::InvalidArgument("header_row must be 0 (no header) or a 1-based row number")
        .WithDetail(ErrorDetail::Field("header_row", "must be >= 0"));
  }
  auto report = [&](double f) {
    if (progress) progress(std::clamp(f, 0.0, 1.0));
  };
  auto cancelled = [&] { return cancel && cancel(); };
  struct stat st;
  int64_t input_bytes = ::stat(input_path.c_str(), &st) == 0 ? st.st_size : 0;

  Workbook wb;
  RETURN_IF_ERROR(wb.Open(input_path, opts.max_uncompressed_bytes));
  ASSIGN_OR_RETURN(const Workbook::Sheet* sheet, PickSheet(wb, opts.sheet));
  std::vector<std::string> strings;
  RETURN_IF_ERROR(wb.LoadSharedStrings(&strings));
  std::vector<uint8_t> date_styles;
  RETURN_IF_ERROR(wb.LoadDateStyles(&date_styles));

  // Pass 1: header, columns, types, bad rows.
  SheetReader reader(wb, strings, date_styles);
  RETURN_IF_ERROR(reader.Open(sheet->part));
  CellConverter conv(import.hints);
  BadRowSink bad(import, "row");
  std::vector<std::string> header;  // by sheet column - 1
  bool header_seen = opts.header_row == 0;
  std::vector<ColumnTypeTracker> trackers;
  std::vector<std::optional<ColumnSpec>> hinted;  // filled once the header is known
  std::vector<int64_t> bad_rows;                  // sheet row numbers dropped as bad
  int64_t good = 0, row_number = 0, seen = 0;
  std::vector<RowCell> cells;
  std::string raw, reason;
  ConvertedCell scratch;
  auto name_of = [&](int64_t col) {
    size_t i = static_cast<size_t>(col - 1);
    return i < header.size() && !header[i].empty() ? header[i] : "column_" + std::to_string(col);
  };
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&row_number, &cells, &raw));
    if (!more) break;
    if ((++seen & 1023) == 0) {
      if (cancelled()) return Status::Cancelled("import cancelled");
      report(0.5 * reader.fraction());
    }
    if (opts.header_row > 0 && row_number <= opts.header_row) {
      if (row_number == opts.header_row) {
        header_seen = true;
        for (const RowCell& c : cells) {
          if (header.size() < static_cast<size_t>(c.column)) header.resize(static_cast<size_t>(c.column));
          header[static_cast<size_t>(c.column - 1)] = std::string(TrimBlanks(CellText(c.value)));
        }
      }
      continue;
    }
    if (!header_seen) {
      return Status::InvalidArgument("the sheet has no row " + std::to_string(opts.header_row) +
                                     " to read the header from")
          .WithDetail(ErrorDetail::Field("header_row", "no such row"));
    }
    bool any = false;
    std::string column;
    bool ok = true;
    for (RowCell& c : cells) {
      if (!c.error.empty()) {
        ok = false;
        column = name_of(c.column);
        reason = "cell " + ColumnLetters(c.column) + std::to_string(row_number) + " " + c.error;
        break;
      }
      c.value = conv.Normalize(c.value);
      if (c.value.kind == CellKind::kMissing) continue;
      any = true;
      auto spec = HintedSpec(name_of(c.column), import.hints);
      if (spec && !conv.Convert(c.value, *spec, &scratch, &reason)) {
        ok = false;
        column = name_of(c.column);
        reason = "cell " + ColumnLetters(c.column) + std::to_string(row_number) + ": " + reason;
        break;
      }
    }
    if (!ok) {
      RETURN_IF_ERROR(bad.Report(row_number, column, reason, raw));
      bad_rows.push_back(row_number);
      continue;
    }
    if (!any) {
      continue;
    }
    ++good;
    for (const RowCell& c : cells) {
      if (c.value.kind == CellKind::kMissing) continue;
      if (trackers.size() < static_cast<size_t>(c.column)) trackers.resize(static_cast<size_t>(c.column));
      trackers[static_cast<size_t>(c.column - 1)].Observe(c.value);
    }
  }
  if (!header_seen) {
    return Status::InvalidArgument("the sheet has no row " + std::to_string(opts.header_row) +
                                   " to read the header from")
        .WithDetail(ErrorDetail::Field("header_row", "no such row"));
  }
  if (good == 0) {
    if (bad.count() > 0) return Status::InvalidArgument("none of the sheet's rows could be read");
    return Status::InvalidArgument("sheet \"" + sheet->name + "\" holds no data rows");
  }
  // Columns: the header's, plus any column to its right that holds data; empty and repeated names fixed.
  size_t ncols = std::max(header.size(), trackers.size());
  // Trailing header columns with neither a name nor data are dropped.
  while (ncols > 0 && (ncols > header.size() || header[ncols - 1].empty()) &&
         (ncols > trackers.size() || !trackers[ncols - 1].seen())) {
    --ncols;
  }
  trackers.resize(ncols);
  std::vector<std::string> names(ncols);
  std::unordered_map<std::string, int> used;
  for (size_t c = 0; c < ncols; ++c) used[name_of(static_cast<int64_t>(c + 1))]++;
  std::unordered_map<std::string, int> next_suffix;
  std::unordered_map<std::string, int> taken;
  for (size_t c = 0; c < ncols; ++c) {
    std::string base = name_of(static_cast<int64_t>(c + 1));
    std::string name = base;
    if (taken.count(name)) {
      int k = std::max(2, next_suffix[base]);
      while (taken.count(base + "_" + std::to_string(k)) || used.count(base + "_" + std::to_string(k))) ++k;
      name = base + "_" + std::to_string(k);
      next_suffix[base] = k + 1;
    }
    taken[name] = 1;
    names[c] = name;
  }
  std::vector<ColumnType> inferred(ncols);
  for (size_t c = 0; c < ncols; ++c) inferred[c] = trackers[c].Resolve();
  ASSIGN_OR_RETURN(std::vector<ColumnSpec> specs, BuildColumnSpecs(names, inferred, import.hints));
  std::vector<ColumnType> types(ncols);
  for (size_t c = 0; c < ncols; ++c) types[c] = specs[c].type;

  // Pass 2: convert and write.
  ASSIGN_OR_RETURN(auto writer, RowGroupWriter::Create(output_path, names, types, import.zstd_level));
  SheetReader again(wb, strings, date_styles);
  RETURN_IF_ERROR(again.Open(sheet->part));
  size_t next_bad = 0;
  seen = 0;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, again.Next(&row_number, &cells, &raw));
    if (!more) break;
    if ((++seen & 1023) == 0) {
      if (cancelled()) return Status::Cancelled("import cancelled");
      report(0.5 + 0.5 * again.fraction());
    }
    if (row_number <= opts.header_row) continue;
    if (next_bad < bad_rows.size() && bad_rows[next_bad] == row_number) {
      ++next_bad;
      continue;
    }
    bool any = false;
    for (RowCell& c : cells) {
      c.value = conv.Normalize(c.value);
      any = any || c.value.kind != CellKind::kMissing;
    }
    if (!any) continue;
    RETURN_IF_ERROR(writer->StartRow());
    for (const RowCell& c : cells) {
      size_t col = static_cast<size_t>(c.column - 1);
      if (col >= ncols) {
        if (c.value.kind == CellKind::kMissing) continue;
        return Status::Internal("the workbook changed during the import");
      }
      ConvertedCell out;
      if (!conv.Convert(c.value, specs[col], &out, &reason)) {
        return Status::Internal("row " + std::to_string(row_number) + ": column \"" + names[col] + "\": " + reason +
                                " after type inference");
      }
      writer->Set(col, out);
    }
  }
  if (cancelled()) return Status::Cancelled("import cancelled");
  if (writer->rows() != good) return Status::Internal("the workbook changed during the import");
  ASSIGN_OR_RETURN(int64_t out_bytes, writer->Finish());
  Status committed = bad.Commit();
  if (!committed.ok()) {
    ::unlink(output_path.c_str());
    return committed;
  }
  ImportResult result;
  result.rows = writer->rows();
  result.input_bytes = input_bytes;
  result.output_bytes = out_bytes;
  result.bad_rows = bad.count();
  result.encoding = "utf-8";
  for (size_t c = 0; c < ncols; ++c) result.columns.push_back(ColumnInfo{names[c], types[c], writer->stats()[c].missing});
  report(1.0);
  return result;
}

}  // namespace

Result<std::vector<std::string>> ListXlsxSheets(const std::string& path) {
  try {
    Workbook wb;
    RETURN_IF_ERROR(wb.Open(path, XlsxOptions{}.max_uncompressed_bytes));
    std::vector<std::string> names;
    for (const auto& s : wb.sheets()) names.push_back(s.name);
    return names;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while reading " + path);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("reading the workbook failed: ") + e.what());
  }
}

Result<ImportResult> ImportXlsxFile(const std::string& input_path, const std::string& output_path,
                                    const XlsxOptions& xlsx, const ImportOptions& import,
                                    const ProgressFn& progress, const CancelFn& cancel) {
  try {
    return Import(input_path, output_path, xlsx, import, progress, cancel);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while importing " + input_path);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("import failed: ") + e.what());
  }
}

}  // namespace lathe
