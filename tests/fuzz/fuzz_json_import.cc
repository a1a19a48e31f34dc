// Fuzz target: JSON Lines / JSON array import.
#include "data/json_import.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lathe;
  const std::string in = fuzz::WriteInput(data, size, "in.json");
  const std::string out = fuzz::Scratch() + "/out.lcol";
  const std::string quarantine = fuzz::Scratch() + "/quarantine.jsonl";
  const uint8_t knob = size ? data[size - 1] : 0;
  JsonImportOptions json;
  json.layout = static_cast<JsonLayout>(knob % 3);
  json.max_depth = 16;
  json.max_record_bytes = 1 << 16;
  ImportOptions import;
  import.bad_rows = static_cast<BadRowPolicy>((knob >> 2) % 3);
  import.quarantine_path = quarantine;
  import.max_bad_rows = 50;
  fuzz::CheckImport(ImportJsonFile(in, out, json, import, nullptr, nullptr), out, quarantine);
  return 0;
}
