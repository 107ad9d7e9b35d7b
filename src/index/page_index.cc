// The sender keeps only digests (32 bytes per distinct page plus the map's overhead); the
// receiver keeps every distinct page's content, because any later REF frame may name it.
// Digests are SHA-256 computed with a reusable EVP context (SHA-NI makes this ~2 GB/s).
#include "index/page_index.h"

#include <cstdlib>

namespace gangmig::index {

Fingerprinter::Fingerprinter()
    : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
  if (md_ == nullptr || ctx_ == nullptr) std::abort();  // OpenSSL without SHA-256: unusable
}

Fingerprinter::~Fingerprinter() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

Digest Fingerprinter::Of(ByteView page) {
  Digest d;
  unsigned int len = 0;
  EVP_DigestInit_ex2(ctx_, md_, nullptr);
  EVP_DigestUpdate(ctx_, page.data(), page.size());
  EVP_DigestFinal_ex(ctx_, d.bytes.data(), &len);
  return d;
}

PageIndex::Lookup PageIndex::FindOrInsert(const Digest& digest) {
  auto [it, inserted] = map_.try_emplace(digest, uint32_t(map_.size()));
  return Lookup{it->second, inserted};
}

uint32_t PageStore::Add(ByteView page) {
  if (count_ % kPagesPerSlab == 0) {
    slabs_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kPagesPerSlab * kPageSize));
  }
  uint8_t* dst = slabs_.back().get() + (count_ % kPagesPerSlab) * kPageSize;
  std::memcpy(dst, page.data(), kPageSize);
  return count_++;
}

}  // namespace gangmig::index
