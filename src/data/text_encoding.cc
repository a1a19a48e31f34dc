#include "data/text_encoding.h"

#include <errno.h>
#include <iconv.h>

#include <algorithm>
#include <cstring>

#include "data/csv_tokenizer.h"

namespace lathe {

const char* TextEncodingName(TextEncoding e) {
  switch (e) {
    case TextEncoding::kUtf8: return "utf-8";
    case TextEncoding::kGb18030: return "gb18030";
    case TextEncoding::kLatin1: return "latin-1";
  }
  return "utf-8";
}

Result<TextEncoding> ParseTextEncoding(std::string_view name) {
  std::string n;
  for (char c : name.substr(0, 32)) n.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  if (n == "utf-8" || n == "utf8") return TextEncoding::kUtf8;
  if (n == "gb18030" || n == "gbk" || n == "gb2312" || n == "cp936") return TextEncoding::kGb18030;
  if (n == "latin-1" || n == "latin1" || n == "iso-8859-1" || n == "iso8859-1" || n == "iso_8859-1") {
    return TextEncoding::kLatin1;
  }
  std::string msg = "must be utf-8, gb18030 (also gbk, gb2312) or latin-1 (also iso-8859-1)";
  return Status::InvalidArgument("unknown encoding '" + std::string(name.substr(0, 40)) + "': " + msg)
      .WithDetail(ErrorDetail::Field("encoding", msg));
}

namespace {

// Counts valid multibyte UTF-8 sequences and invalid bytes. A sequence cut by the end of an incomplete
// sample counts as neither.
void ScanUtf8(std::string_view s, bool complete, int64_t* valid_multi, int64_t* invalid) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else {
      ++*invalid, ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) break;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (k < len) {
      if (i + k == n && !complete) return;  // cut by the end of the sample
      ++*invalid, ++i;
      continue;
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      ++*invalid, ++i;
      continue;
    }
    ++*valid_multi;
    i += len;
  }
}

// GB18030 byte structure: ASCII; lead 81-FE + trail 40-7E/80-FE; or 81-FE 30-39 81-FE 30-39. Returns
// false on a structural error; counts multibyte characters and those in the GB2312 area.
bool ScanGb18030(std::string_view s, bool complete, int64_t* multi, int64_t* gb2312) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c == 0x80 || c == 0xFF) return false;
    if (i + 1 >= n) return !complete;
    unsigned char t = p[i + 1];
    if ((t >= 0x40 && t <= 0x7E) || (t >= 0x80 && t <= 0xFE)) {
      ++*multi;
      if (c >= 0xA1 && t >= 0xA1) ++*gb2312;
      i += 2;
      continue;
    }
    if (t < 0x30 || t > 0x39) return false;
    if (i + 3 >= n) return !complete;
    if (p[i + 2] < 0x81 || p[i + 2] > 0xFE || p[i + 3] < 0x30 || p[i + 3] > 0x39) return false;
    ++*multi;
    i += 4;
  }
  return true;
}

}  // namespace

bool HasUtf16Or32Bom(std::string_view s) {
  auto starts = [&](const char* bom, size_t n) { return s.size() >= n && std::memcmp(s.data(), bom, n) == 0; };
  return starts("\xFF\xFE", 2) || starts("\xFE\xFF", 2) || starts("\x00\x00\xFE\xFF", 4);
}

TextEncoding DetectTextEncoding(std::string_view sample, bool complete) {
  if (sample.size() >= 3 && std::memcmp(sample.data(), "\xEF\xBB\xBF", 3) == 0) return TextEncoding::kUtf8;
  // The common case first, at memory speed: all of it is valid UTF-8 (pure ASCII prefixes are skipped 64
  // bytes at a time; any byte >= 0x80 sends the rest to the UTF-8 validator).
  size_t ascii = 0;
  for (; ascii + 64 <= sample.size(); ascii += 64) {
    uint64_t w[8];
    std::memcpy(w, sample.data() + ascii, 64);
    if (((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) & 0x8080808080808080ULL) != 0) break;
  }
  if (FindInvalidUtf8(sample.data() + ascii, sample.size() - ascii) < 0) return TextEncoding::kUtf8;
  int64_t valid_multi = 0, invalid = 0;
  ScanUtf8(sample, complete, &valid_multi, &invalid);
  if (invalid == 0 || (valid_multi > 0 && valid_multi >= 4 * invalid)) return TextEncoding::kUtf8;
  int64_t multi = 0, gb2312 = 0;
  if (ScanGb18030(sample, complete, &multi, &gb2312) && multi > 0 && gb2312 * 2 >= multi) {
    // The structure fits; glibc's decoder is the judge of the exact code ranges.
    auto dec = Utf8Decoder::Create(TextEncoding::kGb18030, Utf8Decoder::OnInvalid::kFail);
    if (dec.ok()) {
      std::string out;
      // Sample cut mid-sequence: only whole characters are judged (the rest stays pending).
      if ((*dec)->Decode(sample.data(), sample.size(), complete, &out).ok()) return TextEncoding::kGb18030;
    }
  }
  return TextEncoding::kLatin1;
}

Result<std::unique_ptr<Utf8Decoder>> Utf8Decoder::Create(TextEncoding from, OnInvalid on_invalid) {
  if (from == TextEncoding::kUtf8) return Status::InvalidArgument("UTF-8 input needs no decoder");
  std::unique_ptr<Utf8Decoder> d(new Utf8Decoder());
  d->from_ = from;
  d->on_invalid_ = on_invalid;
  if (from == TextEncoding::kGb18030) {
    iconv_t cd = ::iconv_open("UTF-8", "GB18030");
    if (cd == reinterpret_cast<iconv_t>(-1)) {
      return Status::Internal(std::string("iconv cannot convert GB18030 to UTF-8: ") + std::strerror(errno));
    }
    d->cd_ = cd;
  }
  return d;
}

Utf8Decoder::~Utf8Decoder() {
  if (cd_ != nullptr) ::iconv_close(static_cast<iconv_t>(cd_));
}

// Handles an undecodable byte at chunk[at]: an error (kFail) or a 0xFF marker (kMark).
Status Utf8Decoder::Invalid(const char* chunk, size_t at, std::string* out, bool* stop) {
  if (on_invalid_ == OnInvalid::kMark) {
    out->push_back(static_cast<char>(0xFF));
    ++invalid_bytes_;
    *stop = false;
    return Status::Ok();
  }
  *stop = true;
  int64_t line = lines_ + std::count(chunk, chunk + at, '\n') + 1;
  int64_t line_start = line_start_;
  for (size_t i = at; i > 0; --i) {
    if (chunk[i - 1] == '\n') {
      line_start = consumed_ + static_cast<int64_t>(i);
      break;
    }
  }
  int64_t offset = consumed_ + static_cast<int64_t>(at);
  std::string msg = "the bytes at byte " + std::to_string(offset - line_start + 1) + " of the line (file offset " +
                    std::to_string(offset) + ") are not valid " + TextEncodingName(from_) + " text";
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + msg).WithDetail(ErrorDetail::Line(line, msg));
}

Status Utf8Decoder::Decode(const char* data, size_t size, bool last, std::string* out) {
  std::string joined;
  const char* in = data;
  size_t n = size;
  if (!pending_.empty()) {
    joined = pending_;
    joined.append(data, size);
    pending_.clear();
    in = joined.data();
    n = joined.size();
  }
  size_t done = 0;  // bytes of `in` converted (or marked)
  if (from_ == TextEncoding::kLatin1) {
    size_t old = out->size();
    out->resize(old + 2 * n);
    char* o = out->data() + old;
    for (size_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(in[i]);
      if (c < 0x80) {
        *o++ = static_cast<char>(c);
      } else {
        *o++ = static_cast<char>(0xC0 | (c >> 6));
        *o++ = static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    out->resize(static_cast<size_t>(o - out->data()));
    done = n;
  } else {
    auto cd = static_cast<iconv_t>(cd_);
    while (done < n) {
      size_t old = out->size();
      size_t room = 2 * (n - done) + 16;
      out->resize(old + room);
      char* inp = const_cast<char*>(in + done);
      size_t inleft = n - done;
      char* outp = out->data() + old;
      size_t outleft = room;
      size_t r = ::iconv(cd, &inp, &inleft, &outp, &outleft);
      int err = errno;
      out->resize(old + (room - outleft));
      done = static_cast<size_t>(inp - in);
      if (r != static_cast<size_t>(-1)) break;
      if (err == E2BIG) continue;
      if (err == EINVAL && !last) {
        pending_.assign(in + done, n - done);
        n = done;  // the rest waits for the next call
        break;
      }
      // EILSEQ, or EINVAL at the very end: one undecodable byte.
      bool stop = false;
      RETURN_IF_ERROR(Invalid(in, done, out, &stop));
      ++done;
      ::iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset the shift state (GB18030 has none; harmless)
    }
  }
  // Advance the position bookkeeping over the bytes consumed.
  const char* last_nl = nullptr;
  int64_t nl = 0;
  for (const char* p = in; p < in + done;) {
    const void* hit = std::memchr(p, '\n', static_cast<size_t>(in + done - p));
    if (hit == nullptr) break;
    last_nl = static_cast<const char*>(hit);
    ++nl;
    p = last_nl + 1;
  }
  if (last_nl != nullptr) line_start_ = consumed_ + (last_nl - in) + 1;
  lines_ += nl;
  consumed_ += static_cast<int64_t>(done);
  return Status::Ok();
}

}  // namespace lathe
