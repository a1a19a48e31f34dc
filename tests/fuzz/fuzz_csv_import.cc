// Fuzz target: CSV import (detection of encoding, delimiter, quote and header; hints; bad-row policies).
#include "data/csv_import.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lathe;
  const std::string in = fuzz::WriteInput(data, size, "in.csv");
  const std::string out = fuzz::Scratch() + "/out.lcol";
  const std::string quarantine = fuzz::Scratch() + "/quarantine.jsonl";
  const uint8_t knob = size ? data[0] : 0;
  CsvOptions csv;
  csv.segment_bytes = 64 + (knob & 0x3f) * 16;  // many segment joins
  csv.num_threads = 1 + (knob >> 7);
  csv.max_field_bytes = 4096;
  csv.max_line_bytes = 65536;
  ImportOptions import;
  import.bad_rows = static_cast<BadRowPolicy>((knob >> 1) % 3);
  import.quarantine_path = quarantine;
  import.max_bad_rows = 50;
  if (knob & 0x40) import.hints.missing_tokens = {"-", "?"};
  fuzz::CheckImport(ImportCsvFile(in, out, csv, import, nullptr, nullptr), out, quarantine);
  return 0;
}
