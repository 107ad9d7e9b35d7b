#include "index/sha256_pages.h"

#include <openssl/evp.h>

#include <cstdlib>

#ifdef GANGMIG_HAVE_IPSEC_MB
#define NO_COMPAT_IMB_API_053  // the library's old names clash with OpenSSL's SHA1()
#include <intel-ipsec-mb.h>
#endif

namespace gangmig::index {

struct Sha256Pages::Impl {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
#ifdef GANGMIG_HAVE_IPSEC_MB
  IMB_MGR* mgr = nullptr;  // made on the first Many(): most users hash one page at a time
  bool mgr_failed = false;

  IMB_MGR* Mgr() {
    if (mgr == nullptr && !mgr_failed) {
      mgr = alloc_mb_mgr(0);
      IMB_ARCH arch;
      if (mgr != nullptr) init_mb_mgr_auto(mgr, &arch);
      if (mgr == nullptr || imb_get_errno(mgr) != 0) {
        if (mgr != nullptr) free_mb_mgr(mgr);
        mgr = nullptr;  // OpenSSL does it, one page at a time
        mgr_failed = true;
      }
    }
    return mgr;
  }
#endif

  Impl() {
    if (md == nullptr || ctx == nullptr) std::abort();  // OpenSSL without SHA-256: unusable
  }
  ~Impl() {
#ifdef GANGMIG_HAVE_IPSEC_MB
    if (mgr != nullptr) free_mb_mgr(mgr);
#endif
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }

  Digest One(const uint8_t* p, size_t len) {
    Digest d;
    unsigned int out_len = 0;
    EVP_DigestInit_ex2(ctx, md, nullptr);
    EVP_DigestUpdate(ctx, p, len);
    EVP_DigestFinal_ex(ctx, d.bytes.data(), &out_len);
    return d;
  }

#ifdef GANGMIG_HAVE_IPSEC_MB
  // Jobs come back in the order they were submitted; each writes its own digest. A job
  // the library refuses (it never should: the parameters are fixed) fails the batch, and
  // the caller hashes it again with OpenSSL.
  bool Batch(const uint8_t* pages, size_t n, size_t page_size, Digest* out) {
    size_t done = 0;
    bool ok = true;
    auto count = [&](IMB_JOB* j) {
      for (; j != nullptr; j = IMB_GET_COMPLETED_JOB(mgr)) {
        ok = ok && j->status == IMB_STATUS_COMPLETED;
        ++done;
      }
    };
    for (size_t i = 0; i < n; ++i) {
      IMB_JOB* j = IMB_GET_NEXT_JOB(mgr);
      j->cipher_mode = IMB_CIPHER_NULL;
      j->cipher_direction = IMB_DIR_ENCRYPT;
      j->chain_order = IMB_ORDER_HASH_CIPHER;
      j->hash_alg = IMB_AUTH_SHA_256;
      j->src = pages + i * page_size;
      j->hash_start_src_offset_in_bytes = 0;
      j->msg_len_to_hash_in_bytes = page_size;
      j->msg_len_to_cipher_in_bytes = 0;
      j->auth_tag_output = out[i].bytes.data();
      j->auth_tag_output_len_in_bytes = 32;
      count(IMB_SUBMIT_JOB(mgr));
    }
    for (IMB_JOB* j; (j = IMB_FLUSH_JOB(mgr)) != nullptr;) count(j);
    return ok && done == n;
  }
#endif
};

Sha256Pages::Sha256Pages() : impl_(std::make_unique<Impl>()) {}
Sha256Pages::~Sha256Pages() = default;

Digest Sha256Pages::Of(ByteView page) { return impl_->One(page.data(), page.size()); }

void Sha256Pages::Many(const uint8_t* pages, size_t n, size_t page_size, Digest* out) {
#ifdef GANGMIG_HAVE_IPSEC_MB
  if (impl_->Mgr() != nullptr && impl_->Batch(pages, n, page_size, out)) return;
#endif
  for (size_t i = 0; i < n; ++i) out[i] = impl_->One(pages + i * page_size, page_size);
}

}  // namespace gangmig::index
