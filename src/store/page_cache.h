// The receiver's content-addressed page cache: page contents on disk, named by their
// SHA-256, kept across sessions and restarts, bounded in size. A session adds every
// distinct page it received; a later session (or `gangmig cache import`) can find a page
// by its SHA-256 instead of receiving it again.
//
// On-disk format (docs/DESIGN.md, "The page cache"): DIR holds segment files
// seg-NNNNNNNN.pages of up to kEntriesPerSegment entries, appended in order:
//
//   magic "GGPC" | be64 check | be64 fast | key[32] | page[4096]   (kEntrySize = 4148)
//
// key = SHA-256(page), computed here, never taken from a peer; fast = XXH3-64(page), the
// cheap name a summary of the cache can be built from without reading the pages;
// check = XXH3-64 of fast || key || page. An entry whose check fails (a torn write, a flipped bit) is never
// returned: a read of it is a miss, and the entry is forgotten.
//
// Bound: the sum of segment sizes stays under `max_bytes` (plus one segment being
// written): when a segment is full and the bound is passed, the oldest segment is
// deleted (FIFO). A hit in the oldest quarter of the segments is written again at the
// head (second chance), so contents in use survive and FIFO approximates LRU at the
// cost of one append per rescued page, without per-entry bookkeeping on disk.
//
// Memory: an index of 16-byte key prefixes (the full key is checked on disk) with each
// entry's place and fast hash, ~56 bytes per entry, plus one write batch. Thread-safe (one mutex): sessions share one cache.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "index/page_index.h"

namespace gangmig::store {

inline constexpr size_t kPageSize = 4096;
inline constexpr uint8_t kEntryMagic[4] = {'G', 'G', 'P', 'C'};
inline constexpr size_t kEntryHeaderSize = 4 + 8 + 8 + 32;
inline constexpr size_t kEntrySize = kEntryHeaderSize + kPageSize;  // 4148
inline constexpr uint32_t kEntriesPerSegment = 8192;                // ~32 MiB per segment
inline constexpr size_t kWriteBatchEntries = 64;                    // one pwrite, ~260 KiB

using Key = index::Digest;  // SHA-256 of the page

struct CacheStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;        // on disk, all segments
  uint64_t segments = 0;
  uint64_t hits = 0;         // Get found the page (this process)
  uint64_t misses = 0;       // Get did not
  uint64_t corrupt = 0;      // entries whose check failed (at open or on a read)
  uint64_t added = 0;        // pages written (this process)
  uint64_t evicted = 0;      // entries dropped with their segment (this process)
  uint64_t rescued = 0;      // hits written again at the head (second chance)
  // Since the cache was created: kept in DIR/stats when the cache is closed.
  uint64_t total_hits = 0, total_misses = 0, total_added = 0, total_evicted = 0;
};

class PageCache {
 public:
  // Opens (creating if needed) the cache in `dir` and indexes what is there, checking
  // every entry. `dir` must be private to this user: a directory that group or others
  // may access is refused with the chmod to run. One process at a time: the directory
  // is locked (flock on DIR/lock) while the cache is open, and a second opener gets
  // "cache DIR is in use by another process ...".
  // `segment_entries`: entries per segment file (smaller only in tests).
  static Result<std::unique_ptr<PageCache>> Open(const std::string& dir, uint64_t max_bytes,
                                                 uint32_t segment_entries = kEntriesPerSegment);
  ~PageCache();  // writes the pending batch
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // SHA-256 of a page (REQUIRES: page.size() == kPageSize). Not thread-safe across
  // threads sharing one Sha256Pages: each caller passes its own.
  static Key KeyOf(index::Sha256Pages* fp, ByteView page) { return fp->Of(page); }

  bool Contains(const Key& key) const;
  // Copies the page named `key` into out[kPageSize]. false: not cached, or its entry was
  // damaged (then it is forgotten). Errors: I/O.
  Result<bool> Get(const Key& key, uint8_t* out);
  // Adds `page` under `key` unless it is there. REQUIRES: key == SHA-256(page).
  Status Put(const Key& key, ByteView page);
  // Writes the pending batch.
  Status Flush();

  CacheStats stats() const;
  // Calls fn(fast) for every entry (its XXH3-64 of the page: a summary's input).
  void ForEachFastHash(const std::function<void(uint64_t)>& fn) const;
  // XXH3-64 of a page, as the entries hold it.
  static uint64_t FastHashOf(ByteView page);
  const std::string& dir() const { return dir_; }

 private:
  struct Loc {
    uint32_t segment;  // segment number (file seg-%08u.pages)
    uint32_t slot;     // entry index in it
    uint64_t fast;     // XXH3-64 of the page
  };
  struct Prefix {
    uint64_t a, b;
    bool operator==(const Prefix& o) const { return a == o.a && b == o.b; }
  };
  struct PrefixHash {
    size_t operator()(const Prefix& p) const { return size_t(p.a); }
  };

  PageCache(std::string dir, uint64_t max_bytes, uint32_t segment_entries);
  static Prefix PrefixOf(const Key& key);
  Status Load();
  Status LoadSegment(uint32_t segment);
  Status NewHead();
  void LoadTotals();
  void SaveTotalsLocked() const;
  Result<int> Fd(uint32_t segment);
  Status PutLocked(const Key& key, ByteView page);
  Status FlushLocked();
  Status EvictLocked();
  Result<bool> ReadLocked(const Key& key, Loc loc, uint8_t* out);
  std::string SegmentPath(uint32_t segment) const;

  const std::string dir_;
  const uint64_t max_bytes_;
  const uint32_t per_segment_;
  mutable std::mutex mu_;
  std::unordered_map<Prefix, Loc, PrefixHash> index_;
  std::deque<uint32_t> segments_;  // oldest first; the last one is the head
  std::unordered_map<uint32_t, int> fds_;  // open segment files
  uint32_t head_slots_ = 0;        // entries in the head segment, written or batched
  Bytes batch_;                    // entries of the head not yet written
  std::vector<Key> batch_keys_;
  CacheStats stats_;
  CacheStats totals_;  // total_* of earlier processes
  int lock_fd_ = -1;   // DIR/lock, flock'ed while open
};

// The 4 KiB pages of `path` (a RAM image, any file; a last partial page is padded with
// zeros), all-zero pages skipped, added to `cache`. Returns pages added (new ones).
Result<uint64_t> ImportFile(PageCache* cache, const std::string& path);

}  // namespace gangmig::store
