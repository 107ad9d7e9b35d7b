// The page cache is a log of fixed-size entries cut into segment files, and an index in
// memory from a 16-byte prefix of each key to where its entry lies. Writes are appends,
// gathered in batches of kWriteBatchEntries entries (one pwrite each); reads are one
// pread, checked (magic, XXH3-64 over key and page, the full 32-byte key) before the
// page is handed out. Opening reads every segment once and keeps the entries whose check
// holds, so a torn tail (a crash mid-write) or a damaged entry is simply not indexed,
// and the head segment is cut back to its last whole entry before appends resume.
#include "store/page_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL  // header-only, as in index/page_index.cc
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <fstream>

namespace gangmig::store {
namespace {

bool IsZero(const uint8_t* p) {
  static const uint8_t kZero[kPageSize] = {};
  return std::memcmp(p, kZero, kPageSize) == 0;
}

// Entry layout: magic at 0, check at 4, fast at 12, key at 20, page at kEntryHeaderSize.
constexpr size_t kCheckAt = 4, kFastAt = 12, kKeyAt = 20;

uint64_t CheckOf(const uint8_t* e) { return XXH3_64bits(e + kFastAt, kEntrySize - kFastAt); }

// The key of the entry at `e` if it is whole and its check holds.
bool EntryValid(const uint8_t* e) {
  return std::memcmp(e, kEntryMagic, 4) == 0 && LoadBE64(e + kCheckAt) == CheckOf(e);
}

Status PrivateDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Error("cache directory " + dir + ": " + strerror(errno));
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Error("cache directory " + dir + " is not a directory");
  if (st.st_uid != geteuid())
    return Status::Error("cache directory " + dir + " belongs to another user");
  if (st.st_mode & 077) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 0777));
    return Status::Error("cache directory " + dir + " is accessible by group or others (mode " +
                         mode + "); run `chmod 700 " + dir + "`");
  }
  return Status::Ok();
}

// Segment numbers present in `dir`, ascending.
std::vector<uint32_t> ListSegments(const std::string& dir) {
  std::vector<uint32_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    unsigned n = 0;
    char tail[8] = {};
    if (sscanf(e->d_name, "seg-%8u.pag%2s", &n, tail) == 2 && std::string(tail) == "es")
      out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

PageCache::PageCache(std::string dir, uint64_t max_bytes, uint32_t segment_entries)
    : dir_(std::move(dir)), max_bytes_(max_bytes), per_segment_(segment_entries) {}

PageCache::~PageCache() {
  std::lock_guard<std::mutex> lock(mu_);
  (void)FlushLocked();
  SaveTotalsLocked();
  for (auto& [seg, fd] : fds_) close(fd);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<PageCache>> PageCache::Open(const std::string& dir, uint64_t max_bytes,
                                                   uint32_t segment_entries) {
  GANGMIG_RETURN_IF_ERROR(PrivateDir(dir));
  // Two writers would append to the same head segment: one process at a time.
  int lock_fd = open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) return Status::Error("cache " + dir + "/lock: " + strerror(errno));
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(lock_fd);
    if (err == EWOULDBLOCK)
      return Status::Error("cache " + dir +
                           " is in use by another process (one gangmig process at a time may "
                           "use a cache directory)");
    return Status::Error("cache " + dir + "/lock: " + strerror(err));
  }
  std::unique_ptr<PageCache> c(new PageCache(dir, max_bytes, segment_entries));
  c->lock_fd_ = lock_fd;
  std::lock_guard<std::mutex> lock(c->mu_);
  GANGMIG_RETURN_IF_ERROR(c->Load());
  c->LoadTotals();
  return c;
}

std::string PageCache::SegmentPath(uint32_t segment) const {
  char name[32];
  snprintf(name, sizeof(name), "/seg-%08u.pages", segment);
  return dir_ + name;
}

PageCache::Prefix PageCache::PrefixOf(const Key& key) {
  return Prefix{LoadBE64(key.bytes.data()), LoadBE64(key.bytes.data() + 8)};
}

Result<int> PageCache::Fd(uint32_t segment) {
  auto it = fds_.find(segment);
  if (it != fds_.end()) return it->second;
  int fd = open(SegmentPath(segment).c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Error("cache " + SegmentPath(segment) + ": " + strerror(errno));
  fds_[segment] = fd;
  return fd;
}

Status PageCache::Load() {
  for (uint32_t seg : ListSegments(dir_)) {
    segments_.push_back(seg);
    GANGMIG_RETURN_IF_ERROR(LoadSegment(seg));
  }
  // Appends go on in the last segment if it has room (its torn tail cut off), else in a
  // new one.
  if (!segments_.empty() && head_slots_ < per_segment_) {
    auto fd = Fd(segments_.back());
    if (!fd.ok()) return fd.status();
    if (ftruncate(*fd, off_t(head_slots_) * kEntrySize) != 0)
      return Status::Error("cache " + SegmentPath(segments_.back()) + ": " + strerror(errno));
    return Status::Ok();
  }
  return NewHead();
}

// Indexes the valid entries of one segment; head_slots_ ends as its whole entries.
Status PageCache::LoadSegment(uint32_t segment) {
  auto fd = Fd(segment);
  if (!fd.ok()) return fd.status();
  Bytes buf(size_t(256) * kEntrySize);
  uint32_t slot = 0;
  for (;;) {
    ssize_t n = pread(*fd, buf.data(), buf.size(), off_t(slot) * kEntrySize);
    if (n < 0) return Status::Error("cache " + SegmentPath(segment) + ": " + strerror(errno));
    size_t whole = size_t(n) / kEntrySize;
    for (size_t i = 0; i < whole; ++i, ++slot) {
      const uint8_t* e = buf.data() + i * kEntrySize;
      if (!EntryValid(e)) {
        ++stats_.corrupt;
        continue;
      }
      Key k;
      std::memcpy(k.bytes.data(), e + kKeyAt, k.bytes.size());
      index_[PrefixOf(k)] = Loc{segment, slot, LoadBE64(e + kFastAt)};
    }
    if (whole < 256) break;
  }
  head_slots_ = slot;
  return Status::Ok();
}

Status PageCache::NewHead() {
  uint32_t seg = segments_.empty() ? 1 : segments_.back() + 1;
  segments_.push_back(seg);
  head_slots_ = 0;
  auto fd = Fd(seg);
  return fd.ok() ? Status::Ok() : fd.status();
}

bool PageCache::Contains(const Key& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.count(PrefixOf(key)) != 0;
}

Result<bool> PageCache::Get(const Key& key, uint8_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(PrefixOf(key));
  if (it == index_.end()) {
    ++stats_.misses;
    return false;
  }
  Loc loc = it->second;
  auto found = ReadLocked(key, loc, out);
  if (!found.ok() || !*found) {
    ++stats_.misses;
    return found;
  }
  ++stats_.hits;
  // Second chance: a page in use is not lost with the oldest segments. Segment numbers
  // only grow, so "in the oldest quarter" is a comparison of numbers.
  uint32_t oldest = segments_.front(), span = segments_.back() - oldest + 1;
  if (span >= 4 && loc.segment - oldest < span / 4) {
    index_.erase(PrefixOf(key));
    ++stats_.rescued;
    GANGMIG_RETURN_IF_ERROR(PutLocked(key, ByteView(out, kPageSize)));
  }
  return true;
}

// The entry at `loc`, checked. A damaged entry is forgotten (a miss from now on).
Result<bool> PageCache::ReadLocked(const Key& key, Loc loc, uint8_t* out) {
  uint8_t e[kEntrySize];
  size_t flushed = head_slots_ - batch_keys_.size();
  if (loc.segment == segments_.back() && loc.slot >= flushed) {
    std::memcpy(e, batch_.data() + size_t(loc.slot - flushed) * kEntrySize, kEntrySize);
  } else {
    auto fd = Fd(loc.segment);
    if (!fd.ok()) return fd.status();
    ssize_t n = pread(*fd, e, kEntrySize, off_t(loc.slot) * kEntrySize);
    if (n < 0) return Status::Error("cache " + SegmentPath(loc.segment) + ": " + strerror(errno));
    if (size_t(n) != kEntrySize) std::memset(e, 0, kEntrySize);
  }
  if (!EntryValid(e)) {
    ++stats_.corrupt;
    index_.erase(PrefixOf(key));
    return false;
  }
  if (std::memcmp(e + kKeyAt, key.bytes.data(), key.bytes.size()) != 0) return false;  // prefix twin
  std::memcpy(out, e + kEntryHeaderSize, kPageSize);
  return true;
}

Status PageCache::Put(const Key& key, ByteView page) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index_.count(PrefixOf(key))) return Status::Ok();
  return PutLocked(key, page);
}

Status PageCache::PutLocked(const Key& key, ByteView page) {
  size_t at = batch_.size();
  batch_.resize(at + kEntrySize);
  uint8_t* e = batch_.data() + at;
  uint64_t fast = FastHashOf(page);
  std::memcpy(e, kEntryMagic, 4);
  StoreBE64(e + kFastAt, fast);
  std::memcpy(e + kKeyAt, key.bytes.data(), key.bytes.size());
  std::memcpy(e + kEntryHeaderSize, page.data(), kPageSize);
  StoreBE64(e + kCheckAt, CheckOf(e));
  batch_keys_.push_back(key);
  index_[PrefixOf(key)] = Loc{segments_.back(), head_slots_++, fast};
  ++stats_.added;
  if (batch_keys_.size() >= kWriteBatchEntries || head_slots_ == per_segment_)
    GANGMIG_RETURN_IF_ERROR(FlushLocked());
  if (head_slots_ == per_segment_) {
    GANGMIG_RETURN_IF_ERROR(NewHead());
    GANGMIG_RETURN_IF_ERROR(EvictLocked());
  }
  return Status::Ok();
}

Status PageCache::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  return FlushLocked();
}

Status PageCache::FlushLocked() {
  if (batch_keys_.empty()) return Status::Ok();
  uint32_t first = head_slots_ - uint32_t(batch_keys_.size());
  auto fd = Fd(segments_.back());
  if (!fd.ok()) return fd.status();
  ssize_t n = pwrite(*fd, batch_.data(), batch_.size(), off_t(first) * kEntrySize);
  if (n != ssize_t(batch_.size())) {
    // Entries that did not reach the disk are forgotten; the cache stays consistent.
    for (const Key& k : batch_keys_) index_.erase(PrefixOf(k));
    head_slots_ = first;
    batch_.clear();
    batch_keys_.clear();
    return Status::Error("cache " + SegmentPath(segments_.back()) + ": write failed (" +
                         (n < 0 ? std::string(strerror(errno)) : "disk full?") + ")");
  }
  batch_.clear();
  batch_keys_.clear();
  return Status::Ok();
}

// Deletes the oldest segments while the cache is over its bound (the head stays).
Status PageCache::EvictLocked() {
  while (segments_.size() > 1 &&
         uint64_t(segments_.size() - 1) * per_segment_ * kEntrySize > max_bytes_) {
    uint32_t old = segments_.front();
    segments_.pop_front();
    for (auto it = index_.begin(); it != index_.end();) {
      if (it->second.segment == old) {
        it = index_.erase(it);
        ++stats_.evicted;
      } else {
        ++it;
      }
    }
    auto fd = fds_.find(old);
    if (fd != fds_.end()) {
      close(fd->second);
      fds_.erase(fd);
    }
    unlink(SegmentPath(old).c_str());
  }
  return Status::Ok();
}

// DIR/stats: "hits N misses N added N evicted N", the totals before this process.
void PageCache::LoadTotals() {
  std::ifstream f(dir_ + "/stats");
  std::string name;
  uint64_t v;
  while (f >> name >> v) {
    if (name == "hits") totals_.total_hits = v;
    if (name == "misses") totals_.total_misses = v;
    if (name == "added") totals_.total_added = v;
    if (name == "evicted") totals_.total_evicted = v;
  }
}

void PageCache::SaveTotalsLocked() const {
  std::string tmp = dir_ + "/stats.tmp";
  {
    std::ofstream f(tmp);
    f << "hits " << totals_.total_hits + stats_.hits << "\nmisses "
      << totals_.total_misses + stats_.misses << "\nadded " << totals_.total_added + stats_.added
      << "\nevicted " << totals_.total_evicted + stats_.evicted << "\n";
  }
  rename(tmp.c_str(), (dir_ + "/stats").c_str());
}

uint64_t PageCache::FastHashOf(ByteView page) { return XXH3_64bits(page.data(), page.size()); }

void PageCache::ForEachFastHash(const std::function<void(uint64_t)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [prefix, loc] : index_) fn(loc.fast);
}

CacheStats PageCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s = stats_;
  s.total_hits = totals_.total_hits + stats_.hits;
  s.total_misses = totals_.total_misses + stats_.misses;
  s.total_added = totals_.total_added + stats_.added;
  s.total_evicted = totals_.total_evicted + stats_.evicted;
  s.entries = index_.size();
  s.segments = segments_.size();
  s.bytes = segments_.empty()
                ? 0
                : (uint64_t(segments_.size() - 1) * per_segment_ + head_slots_) * kEntrySize;
  return s;
}

Result<uint64_t> ImportFile(PageCache* cache, const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error("cannot read " + path + ": " + strerror(errno));
  index::Sha256Pages fp;
  Bytes buf(256 * kPageSize);
  uint64_t before = cache->stats().added;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      close(fd);
      return Status::Error("reading " + path + ": " + strerror(errno));
    }
    if (n == 0) break;
    size_t len = (size_t(n) + kPageSize - 1) / kPageSize * kPageSize;
    std::memset(buf.data() + n, 0, len - size_t(n));
    for (size_t at = 0; at < len; at += kPageSize) {
      if (IsZero(buf.data() + at)) continue;
      ByteView page(buf.data() + at, kPageSize);
      Status st = cache->Put(PageCache::KeyOf(&fp, page), page);
      if (!st.ok()) {
        close(fd);
        return st;
      }
    }
  }
  close(fd);
  GANGMIG_RETURN_IF_ERROR(cache->Flush());
  return cache->stats().added - before;
}

}  // namespace gangmig::store
