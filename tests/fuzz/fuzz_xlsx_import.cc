// Fuzz target: XLSX import (zip container, workbook/relationships/styles/shared strings/sheet XML).
#include "data/xlsx_import.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lathe;
  const std::string in = fuzz::WriteInput(data, size, "in.xlsx");
  const std::string out = fuzz::Scratch() + "/out.lcol";
  const std::string quarantine = fuzz::Scratch() + "/quarantine.jsonl";
  (void)ListXlsxSheets(in);
  XlsxOptions xlsx;
  xlsx.max_uncompressed_bytes = 64 << 20;
  xlsx.header_row = size % 3;
  ImportOptions import;
  import.bad_rows = static_cast<BadRowPolicy>(size % 3);
  import.quarantine_path = quarantine;
  fuzz::CheckImport(ImportXlsxFile(in, out, xlsx, import, nullptr, nullptr), out, quarantine);
  return 0;
}
