// Encryption at rest: the blob file format (round trips, every tamper case), legacy plaintext blobs, the
// keyring (sources, persistence, rotation) and re-wrapping.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/crypto.h"
#include "store/blob_store.h"
#include "store/keyring.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

constexpr size_t kSeg = 4096;               // the smallest segment size: multi-segment blobs stay small
constexpr size_t kHeader = 93;              // docs/formats.md
constexpr size_t kSealedSeg = kSeg + 16;

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

std::string ReadAllFd(int fd) {
  std::string out;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), off);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

class BlobCryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-blobenc-" + RandomHex(6));
    fs::create_directories(dir_);
    k1_ = RandomBytes(32);
    k2_ = RandomBytes(32);
    ring_ = Keyring::ForTest({k1_});
    blobs_ = Open(ring_.get());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<BlobStore> Open(const Keyring* ring, bool encrypt = true) {
    return std::move(BlobStore::Open((dir_ / "blobs").string(), ring,
                                     BlobStoreOptions{.encrypt = encrypt, .segment_bytes = kSeg}))
        .value();
  }
  // Adopts `content` as a raw blob (stored bytes = content, so segment boundaries are exact).
  std::string Adopt(BlobStore& store, const std::string& content) {
    std::string tmp = store.TempPath("t");
    EXPECT_TRUE(WriteFileAtomic(tmp, content).ok());
    auto id = store.AdoptFile(tmp);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_FALSE(fs::exists(tmp));
    return *id;
  }
  std::string FileOf(const std::string& id) { return *blobs_->FilePathForTest(id); }
  std::string Stored(const std::string& id) { return *ReadFile(FileOf(id)); }
  void Overwrite(const std::string& id, const std::string& bytes) {
    fs::permissions(FileOf(id), fs::perms::owner_read | fs::perms::owner_write);
    ASSERT_TRUE(WriteFileAtomic(FileOf(id), bytes).ok());
  }
  // Both read paths refuse the blob with kDataLoss naming it and `expect` (e.g. "authentication failed").
  void ExpectRefused(const std::string& id, const std::string& expect, const std::string& what) {
    auto got = blobs_->Get(id);
    ASSERT_FALSE(got.ok()) << what << ": Get released bytes";
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << what << ": " << got.status().ToString();
    EXPECT_NE(got.status().message().find(id), std::string::npos) << what << ": " << got.status().message();
    EXPECT_NE(got.status().message().find(expect), std::string::npos) << what << ": " << got.status().message();
    auto plain = blobs_->OpenPlain(id);
    ASSERT_FALSE(plain.ok()) << what << ": OpenPlain released bytes";
    EXPECT_EQ(plain.status().code(), StatusCode::kDataLoss) << what;
  }

  fs::path dir_;
  std::string k1_, k2_;
  std::unique_ptr<Keyring> ring_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_F(BlobCryptoTest, RoundTripsEverySizeAroundSegmentBoundaries) {
  for (size_t n : {size_t{0}, size_t{1}, kSeg - 1, kSeg, kSeg + 1, 2 * kSeg, 3 * kSeg + 5}) {
    const std::string content = Pattern(n, static_cast<uint32_t>(n));
    const std::string id = Adopt(*blobs_, content);
    EXPECT_EQ(id, "r-" + Sha256Hex(content));
    // One sealed segment per started segment (an empty blob still has its final, empty segment).
    const size_t segments = n == 0 ? 1 : (n + kSeg - 1) / kSeg;
    EXPECT_EQ(fs::file_size(FileOf(id)), kHeader + n + 16 * segments) << n;
    auto got = blobs_->Get(id);
    ASSERT_TRUE(got.ok()) << n << ": " << got.status().ToString();
    EXPECT_EQ(*got, content) << n;
    auto plain = blobs_->OpenPlain(id);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_TRUE(plain->in_memory());
    EXPECT_EQ(ReadAllFd(plain->fd()), content) << n;

    // Compressed blobs take the same path.
    auto zid = blobs_->Put(content);
    ASSERT_TRUE(zid.ok());
    EXPECT_EQ(*blobs_->Get(*zid), content) << n;
  }
}

TEST_F(BlobCryptoTest, PlaintextNeverReachesTheDiskAndDedupeStillWorks) {
  const std::string secret = "customer-4711-secret-value;" + std::string(20000, 'a');
  auto z = blobs_->Put(secret);
  ASSERT_TRUE(z.ok());
  const std::string before = Stored(*z);
  EXPECT_EQ(*blobs_->Put(secret), *z);
  EXPECT_EQ(Stored(*z), before);  // not rewritten
  const std::string raw = Adopt(*blobs_, secret);
  for (const auto& id : {*z, raw}) {
    EXPECT_EQ(Stored(id).find("customer-4711"), std::string::npos);
    EXPECT_EQ(*blobs_->KeyIdOf(id), Keyring::KeyId(k1_));
  }
  // Adopting the same content again removes the source and keeps the one blob.
  EXPECT_EQ(Adopt(*blobs_, secret), raw);
}

TEST_F(BlobCryptoTest, EveryTamperedByteIsDetected) {
  const std::string content = Pattern(3 * kSeg + 100, 7);
  const std::string id = Adopt(*blobs_, content);
  const std::string good = Stored(id);
  const size_t seg1 = kHeader + kSealedSeg;
  struct Case {
    size_t offset;
    const char* what;
    const char* expect;
  };
  const Case cases[] = {
      {0, "magic", "authentication failed"},
      {3, "magic", "authentication failed"},
      {8, "format version", "unsupported encrypted format version"},
      {13, "segment size", "authentication failed"},
      {16, "master key id", "unknown master key id"},
      {26, "nonce prefix", "authentication failed"},
      {31, "reserved byte", "authentication failed"},
      {32, "wrapped key version", "authentication failed"},
      {50, "wrapped data key", "authentication failed"},
      {kHeader - 1, "wrapped key tag", "authentication failed"},
      {kHeader + 10, "segment 0 ciphertext", "authentication failed"},
      {seg1 - 1, "segment 0 tag", "authentication failed"},
      {seg1 + kSeg, "segment 1 tag", "authentication failed"},
      {good.size() - 1, "last segment tag", "authentication failed"},
      {good.size() - 20, "last segment ciphertext", "authentication failed"},
  };
  for (const auto& c : cases) {
    std::string bad = good;
    bad[c.offset] ^= 0x01;
    Overwrite(id, bad);
    ExpectRefused(id, c.expect, c.what);
  }
  Overwrite(id, good);
  ASSERT_EQ(*blobs_->Get(id), content);
}

TEST_F(BlobCryptoTest, TruncationAppendingAndReorderingAreDetected) {
  const std::string content = Pattern(3 * kSeg + 100, 8);
  const std::string id = Adopt(*blobs_, content);
  const std::string good = Stored(id);
  auto seg = [&](const std::string& f, size_t i) { return f.substr(kHeader + i * kSealedSeg, kSealedSeg); };

  Overwrite(id, good.substr(0, kHeader + 2 * kSealedSeg));  // at a segment boundary: drops the last
  ExpectRefused(id, "authentication failed", "truncated at a segment boundary");
  Overwrite(id, good.substr(0, kHeader + 3 * kSealedSeg));  // only the short last segment gone
  ExpectRefused(id, "authentication failed", "truncated before the last segment");
  Overwrite(id, good.substr(0, good.size() - 1));
  ExpectRefused(id, "authentication failed", "truncated inside the last segment");
  Overwrite(id, good.substr(0, kHeader));
  ExpectRefused(id, "authentication failed", "header only");
  Overwrite(id, good.substr(0, 40));
  ExpectRefused(id, "authentication failed", "truncated header");
  Overwrite(id, good + "x");
  ExpectRefused(id, "authentication failed", "one byte appended");
  Overwrite(id, good + seg(good, 1));
  ExpectRefused(id, "authentication failed", "a segment appended");

  std::string swapped = good.substr(0, kHeader) + seg(good, 1) + seg(good, 0) + good.substr(kHeader + 2 * kSealedSeg);
  Overwrite(id, swapped);
  ExpectRefused(id, "authentication failed", "segments 0 and 1 swapped");

  // A segment from another blob (another data key) in the same position.
  const std::string other = Adopt(*blobs_, Pattern(3 * kSeg + 100, 9));
  const std::string other_file = Stored(other);
  std::string mixed = good;
  mixed.replace(kHeader + kSealedSeg, kSealedSeg, seg(other_file, 1));
  Overwrite(id, mixed);
  ExpectRefused(id, "authentication failed", "segment from another blob");

  // A whole file put in another blob's place (its wrapped key is bound to its own id).
  Overwrite(id, other_file);
  ExpectRefused(id, "authentication failed", "another blob's file");

  Overwrite(id, good);
  EXPECT_EQ(*blobs_->Get(id), content);
}

TEST_F(BlobCryptoTest, WrongOrMissingKeyIsReportedNeverRead) {
  const std::string id = Adopt(*blobs_, Pattern(10000, 3));
  const std::string zid = *blobs_->Put("model bytes");
  auto other_ring = Keyring::ForTest({k2_});
  auto wrong = Open(other_ring.get());
  for (const auto& b : {id, zid}) {
    auto got = wrong->Get(b);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(got.status().message().find("unknown master key id " + Keyring::KeyId(k1_)), std::string::npos)
        << got.status().message();
    EXPECT_NE(got.status().message().find(b), std::string::npos);
  }
  auto none = Open(nullptr);
  auto got = none->Get(zid);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("no master key"), std::string::npos);
}

TEST_F(BlobCryptoTest, LegacyPlaintextBlobsStayReadableAndRotationEncryptsThem) {
  auto plain_store = Open(nullptr);
  const std::string content = Pattern(kSeg * 2 + 3, 11);
  const std::string raw = Adopt(*plain_store, content);
  const std::string z = *plain_store->Put("legacy model");
  EXPECT_EQ(Stored(raw), content);  // written in the clear, as before encryption existed
  EXPECT_EQ(*blobs_->KeyIdOf(raw), "");

  EXPECT_EQ(*blobs_->Get(raw), content);
  EXPECT_EQ(*blobs_->Get(z), "legacy model");
  auto mapped = blobs_->OpenPlain(raw);
  ASSERT_TRUE(mapped.ok());
  EXPECT_FALSE(mapped->in_memory());
  EXPECT_EQ(ReadAllFd(mapped->fd()), content);

  EXPECT_EQ(*blobs_->Rewrap(raw), RewrapOutcome::kEncrypted);
  EXPECT_EQ(*blobs_->Rewrap(z), RewrapOutcome::kEncrypted);
  EXPECT_EQ(*blobs_->KeyIdOf(raw), Keyring::KeyId(k1_));
  EXPECT_EQ(Stored(raw).find(content.substr(0, 64)), std::string::npos);
  EXPECT_EQ(*blobs_->Get(raw), content);
  EXPECT_EQ(*blobs_->Get(z), "legacy model");

  // A corrupt plaintext blob is not sealed as if it were good.
  const std::string raw2 = Adopt(*plain_store, "plain-content");
  Overwrite(raw2, "plain-contenT");
  auto r = blobs_->Rewrap(raw2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST_F(BlobCryptoTest, AdoptFileStreamsLargeFiles) {
  // 24 MiB with the default 64 KiB segments: encrypted in one pass, the source removed.
  auto store = std::move(BlobStore::Open((dir_ / "big").string(), ring_.get())).value();
  const std::string content = Pattern(size_t{24} << 20, 5);
  std::string tmp = store->TempPath("big");
  ASSERT_TRUE(WriteFileAtomic(tmp, content).ok());
  auto id = store->AdoptFile(tmp);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(*id, "r-" + Sha256Hex(content));
  auto plain = store->OpenPlain(*id);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ReadAllFd(plain->fd()), content);
}

TEST_F(BlobCryptoTest, RotationRewrapsHeadersAndTheNewKeyAloneReadsEverything) {
  const std::string content = Pattern(3 * kSeg + 9, 21);
  const std::string raw = Adopt(*blobs_, content);
  const std::string z = *blobs_->Put("a model bundle");
  const std::string body_before = Stored(raw).substr(kHeader);

  ASSERT_EQ(*ring_->AddActive(k2_), Keyring::KeyId(k2_));
  // Written after the switch: under the new key at once.
  const std::string fresh = *blobs_->Put("written after the switch");
  EXPECT_EQ(*blobs_->KeyIdOf(fresh), Keyring::KeyId(k2_));
  // Before re-wrapping, both keys read.
  EXPECT_EQ(*blobs_->Get(raw), content);

  EXPECT_EQ(*blobs_->Rewrap(raw), RewrapOutcome::kRewrapped);
  EXPECT_EQ(*blobs_->Rewrap(z), RewrapOutcome::kRewrapped);
  EXPECT_EQ(*blobs_->Rewrap(fresh), RewrapOutcome::kAlreadyCurrent);
  EXPECT_EQ(*blobs_->Rewrap(raw), RewrapOutcome::kAlreadyCurrent);
  EXPECT_EQ(Stored(raw).substr(kHeader), body_before);  // only the header changed
  EXPECT_EQ(*blobs_->KeyIdOf(raw), Keyring::KeyId(k2_));
  auto counts = *blobs_->CountByKeyId();
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[Keyring::KeyId(k2_)], 3);

  ASSERT_TRUE(ring_->RetireInactive(false).ok());
  EXPECT_EQ(ring_->Ids(), std::vector<std::string>{Keyring::KeyId(k2_)});
  auto only_new = Keyring::ForTest({k2_});
  auto reader = Open(only_new.get());
  EXPECT_EQ(*reader->Get(raw), content);
  EXPECT_EQ(*reader->Get(z), "a model bundle");
  auto only_old = Keyring::ForTest({k1_});
  EXPECT_EQ(Open(only_old.get())->Get(raw).status().code(), StatusCode::kDataLoss);

  // A blob removed while it was being re-wrapped is not brought back.
  ASSERT_TRUE(blobs_->Remove(z).ok());
  EXPECT_EQ(*blobs_->Rewrap(z), RewrapOutcome::kGone);
  EXPECT_FALSE(blobs_->Exists(z));
}

// ---- keyring

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-keyring-" + RandomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  KeyringOptions FileOptions() const {
    return {.key_file = (dir_ / "master.key").string(), .env_keys = "", .state_dir = (dir_ / "keys").string()};
  }
  fs::path dir_;
};

TEST_F(KeyringTest, KeyFileIsCreatedPrivateAndReloaded) {
  auto ring = Keyring::Load(FileOptions());
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "master.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string id = (*ring)->Active().id;
  EXPECT_EQ(id.size(), 8u);
  auto again = Keyring::Load(FileOptions());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Active().id, id);
  EXPECT_EQ((*again)->Active().key, (*ring)->Active().key);

  ASSERT_TRUE(WriteFileAtomic((dir_ / "bad.key").string(), "not hex").ok());
  auto bad = Keyring::Load({.key_file = (dir_ / "bad.key").string(), .env_keys = "", .state_dir = ""});
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(KeyringTest, EnvironmentKeysTakePrecedenceAndNoFileIsCreated) {
  const std::string a = RandomBytes(32), b = RandomBytes(32);
  KeyringOptions o = FileOptions();
  o.env_keys = HexEncode(a) + "," + HexEncode(b);
  auto ring = Keyring::Load(o);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  EXPECT_TRUE((*ring)->from_environment());
  EXPECT_EQ((*ring)->Active().id, Keyring::KeyId(a));
  EXPECT_TRUE((*ring)->Find(Keyring::KeyId(b)).ok());
  EXPECT_FALSE(fs::exists(dir_ / "master.key"));
  o.env_keys = "abc";
  auto bad = Keyring::Load(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("LATHE_MASTER_KEY"), std::string::npos);
}

TEST_F(KeyringTest, RotationPersistsSurvivesRestartsAndKeepsThePiiKey) {
  auto ring = std::move(Keyring::Load(FileOptions())).value();
  const std::string old_id = ring->Active().id;
  const std::string pii = ring->PiiKey();
  auto sealed_old = ring->Seal("s3cret", "aad");
  ASSERT_TRUE(sealed_old.ok());
  EXPECT_EQ(sealed_old->key_id, old_id);

  const std::string fresh = RandomBytes(32);
  ASSERT_TRUE(ring->AddActive(fresh).ok());
  const std::string new_id = Keyring::KeyId(fresh);
  {  // a restart in the middle of the rotation: both keys, the new one active
    auto mid = std::move(Keyring::Load(FileOptions())).value();
    EXPECT_EQ(mid->Active().id, new_id);
    EXPECT_EQ(mid->Ids().size(), 2u);
    EXPECT_EQ(*mid->Open(*sealed_old, "aad"), "s3cret");
    EXPECT_EQ(mid->PiiKey(), pii);
  }
  auto notes = ring->RetireInactive(false);
  ASSERT_TRUE(notes.ok()) << notes.status().ToString();
  EXPECT_TRUE(notes->empty());
  auto after = std::move(Keyring::Load(FileOptions())).value();
  EXPECT_EQ(after->Ids(), std::vector<std::string>{new_id});
  EXPECT_EQ(after->Active().key, fresh);
  EXPECT_EQ(after->PiiKey(), pii);  // hashed PII values do not change with the encryption key
  auto gone = after->Open(*sealed_old, "aad");
  EXPECT_EQ(gone.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(gone.status().message().find("unknown master key id " + old_id), std::string::npos);
  // Values sealed before key ids were recorded (no id): every key is tried.
  auto legacy = EncryptAesGcm(fresh, "old", "aad");
  EXPECT_EQ(*after->Open(SealedValue{"", *legacy}, "aad"), "old");
  EXPECT_EQ(after->Open(SealedValue{"", *legacy}, "other").status().code(), StatusCode::kDataLoss);
}

TEST_F(KeyringTest, KeepOldKeepsTheRetiredKeyReadable) {
  auto ring = std::move(Keyring::Load(FileOptions())).value();
  const std::string old_id = ring->Active().id;
  ASSERT_TRUE(ring->AddActive(RandomBytes(32)).ok());
  ASSERT_TRUE(ring->RetireInactive(true).ok());
  auto after = std::move(Keyring::Load(FileOptions())).value();
  EXPECT_EQ(after->Ids().size(), 2u);
  EXPECT_NE(after->Active().id, old_id);
  EXPECT_TRUE(after->Find(old_id).ok());
}

}  // namespace
}  // namespace lathe
