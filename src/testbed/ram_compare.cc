// RAM files are mapped read-only (MAP_SHARED, so a file still in use by a QEMU shows its
// current contents) and walked one 4 KiB page at a time: memcmp for comparisons, SHA-256
// digests in a hash set for counting distinct contents. Nothing is copied, so comparing
// two 1 GiB guests costs page-cache reads only.
//
// The compressed lower bound copies each page found for the first time into a piece
// buffer; a full piece is compressed with the sender's own codec (encode::ZstdCompressor)
// and only its size is kept. Pieces stand for record bodies: gangmig's bodies hold frames
// (a few header bytes per page) and REFs besides the pages, so the bound is slightly
// below what any body of gangmig's could reach, which is what a lower bound should be.
#include "testbed/ram_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <unordered_set>

#include "base/bytes.h"
#include "encode/zstd_codec.h"

namespace gangmig::testbed {
namespace {

// A read-only mapping of a whole file; empty files map to nothing.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Error(path + ": " + strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) return CloseWithError(fd, path);
    size_t size = size_t(st.st_size);
    void* data = nullptr;
    if (size > 0) {
      data = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
      if (data == MAP_FAILED) return CloseWithError(fd, path);
      madvise(data, size, MADV_SEQUENTIAL);
    }
    close(fd);
    return std::unique_ptr<MappedFile>(new MappedFile(static_cast<uint8_t*>(data), size));
  }
  ~MappedFile() {
    if (size_ > 0) munmap(data_, size_);
  }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  MappedFile(uint8_t* data, size_t size) : data_(data), size_(size) {}
  static Status CloseWithError(int fd, const std::string& path) {
    Status error = Status::Error(path + ": " + strerror(errno));
    close(fd);
    return error;
  }
  uint8_t* data_;
  size_t size_;
};

bool IsZero(const uint8_t* p, size_t n) {
  static const uint8_t kZeroPage[kRamPageSize] = {};
  return memcmp(p, kZeroPage, n) == 0;
}

using Digest = std::array<uint8_t, 32>;

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    memcpy(&h, d.data(), sizeof(h));  // SHA-256 output is already uniform
    return h;
  }
};

}  // namespace

Result<RamDiff> CompareRamFiles(const std::string& a, const std::string& b) {
  auto fa = MappedFile::Open(a);
  if (!fa.ok()) return fa.status().WithContext("compare RAM");
  auto fb = MappedFile::Open(b);
  if (!fb.ok()) return fb.status().WithContext("compare RAM");
  if ((*fa)->size() != (*fb)->size()) {
    return Status::Error("compare RAM: sizes differ: " + a + " has " +
                         std::to_string((*fa)->size()) + " bytes, " + b + " has " +
                         std::to_string((*fb)->size()));
  }
  RamDiff diff;
  diff.bytes_compared = (*fa)->size();
  for (uint64_t off = 0; off < diff.bytes_compared; off += kRamPageSize) {
    size_t n = size_t(std::min(kRamPageSize, diff.bytes_compared - off));
    if (memcmp((*fa)->data() + off, (*fb)->data() + off, n) == 0) continue;
    if (diff.differing_pages++ == 0) diff.first_diff_offset = off;
  }
  return diff;
}

Result<uint64_t> CountDistinctNonZeroPages(const std::vector<std::string>& files) {
  auto measured = MeasureDistinctNonZeroPages(files);
  if (!measured.ok()) return measured.status();
  return measured->pages;
}

namespace {

// Gathers pages into pieces and adds up their compressed sizes.
class PieceCompressor {
 public:
  explicit PieceCompressor(const DistinctOptions& options)
      : options_(options), out_(encode::ZstdCompressor::Bound(options.piece_bytes)) {
    piece_.reserve(options.piece_bytes);
  }
  void Add(const uint8_t* page, size_t n) {
    piece_.insert(piece_.end(), page, page + n);
    if (piece_.size() >= options_.piece_bytes) Flush();
  }
  // Compresses what is gathered; returns the total so far.
  uint64_t Flush() {
    if (piece_.empty()) return total_;
    if (out_.size() < encode::ZstdCompressor::Bound(piece_.size()))
      out_.resize(encode::ZstdCompressor::Bound(piece_.size()));
    size_t n = zstd_.Compress(piece_, options_.zstd_level, out_.data(), out_.size());
    total_ += std::min(n, piece_.size());
    piece_.clear();
    return total_;
  }

 private:
  DistinctOptions options_;
  encode::ZstdCompressor zstd_;
  Bytes piece_, out_;
  uint64_t total_ = 0;
};

}  // namespace

Result<DistinctPages> MeasureDistinctNonZeroPages(const std::vector<std::string>& files,
                                                  const DistinctOptions& options) {
  std::unordered_set<Digest, DigestHash> seen;
  std::optional<PieceCompressor> pieces;
  if (options.compress) pieces.emplace(options);
  for (const std::string& path : files) {
    auto file = MappedFile::Open(path);
    if (!file.ok()) return file.status().WithContext("count pages");
    for (uint64_t off = 0; off < (*file)->size(); off += kRamPageSize) {
      const uint8_t* page = (*file)->data() + off;
      size_t n = size_t(std::min(kRamPageSize, (*file)->size() - off));
      if (IsZero(page, n)) continue;
      Digest d;
      if (EVP_Digest(page, n, d.data(), nullptr, EVP_sha256(), nullptr) != 1) {
        return Status::Error("count pages: SHA-256 failed");
      }
      if (seen.insert(d).second && pieces) pieces->Add(page, n);
    }
  }
  DistinctPages result;
  result.pages = seen.size();
  if (pieces) result.compressed_bytes = pieces->Flush();
  return result;
}

}  // namespace gangmig::testbed
