// Text encodings of imported files: naming, detection from a sample, and streaming decoding to UTF-8.
//
// Supported: UTF-8, GB18030 (a superset of GBK and GB2312; decoded by glibc iconv) and Latin-1
// (ISO-8859-1; every byte is a character). Decoding keeps every line break where it was (no supported
// encoding has a multibyte sequence containing byte 0x0A), so line numbers of the decoded text are the
// line numbers of the original file.
//
// Utf8Decoder is single-threaded (one per stream); the free functions are pure and thread-safe. Memory:
// a decoder holds at most 3 bytes of an unfinished sequence between calls; Decode appends at most
// 2 bytes per input byte to its output.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lathe {

enum class TextEncoding : uint8_t { kUtf8 = 0, kGb18030 = 1, kLatin1 = 2 };

const char* TextEncodingName(TextEncoding e);  // "utf-8", "gb18030", "latin-1"

// Case-insensitive: utf-8/utf8; gb18030/gbk/gb2312/cp936 (read as GB18030, their superset);
// latin-1/latin1/iso-8859-1/iso8859-1. kInvalidArgument with ErrorDetail::Field("encoding") otherwise.
Result<TextEncoding> ParseTextEncoding(std::string_view name);

// Guesses the encoding of a file from its first bytes (`complete`: the sample is the whole file, so a
// sequence cut at its end is invalid rather than unfinished):
//  - a UTF-8 BOM, or no invalid UTF-8 at all (pure ASCII included) -> UTF-8; also when valid multibyte
//    UTF-8 sequences outnumber invalid bytes 4 to 1 (a UTF-8 file with a few damaged bytes stays UTF-8,
//    and its damaged lines are reported as such);
//  - else, if the sample decodes strictly as GB18030 and at least half of its multibyte characters lie in
//    the GB2312 area (both bytes >= 0xA1: common hanzi and CJK punctuation) -> GB18030;
//  - else Latin-1 (which accepts any bytes).
TextEncoding DetectTextEncoding(std::string_view sample, bool complete);

// True if the sample starts with a UTF-16 or UTF-32 byte order mark (not supported: callers reject these
// files with a clear message instead of importing garbage).
bool HasUtf16Or32Bom(std::string_view sample);

// Streaming conversion of a non-UTF-8 encoding to UTF-8.
class Utf8Decoder {
 public:
  enum class OnInvalid : uint8_t {
    kFail,  // Decode returns kInvalidArgument naming line, byte of the line and file offset
    kMark,  // each undecodable byte becomes 0xFF in the output (never valid UTF-8), so that a later UTF-8
            // check flags exactly the lines that held it
  };
  // kInvalidArgument for kUtf8 (nothing to decode); kInternal if iconv lacks the encoding.
  static Result<std::unique_ptr<Utf8Decoder>> Create(TextEncoding from, OnInvalid on_invalid);
  ~Utf8Decoder();
  Utf8Decoder(const Utf8Decoder&) = delete;
  Utf8Decoder& operator=(const Utf8Decoder&) = delete;

  // Decodes the next bytes of the stream, appending UTF-8 to *out. A sequence cut at the end of `data` is
  // kept for the next call unless `last`, when it is invalid.
  Status Decode(const char* data, size_t size, bool last, std::string* out);

  int64_t invalid_bytes() const { return invalid_bytes_; }  // bytes marked so far (kMark)

 private:
  Utf8Decoder() = default;
  Status Invalid(const char* chunk, size_t at, std::string* out, bool* stop);

  TextEncoding from_ = TextEncoding::kLatin1;
  OnInvalid on_invalid_ = OnInvalid::kFail;
  void* cd_ = nullptr;  // iconv_t
  std::string pending_;
  int64_t consumed_ = 0;         // input bytes before the current chunk
  int64_t lines_ = 0;            // newlines before the current chunk
  int64_t line_start_ = 0;       // file offset of the current line's first byte
  int64_t invalid_bytes_ = 0;
};

}  // namespace lathe
