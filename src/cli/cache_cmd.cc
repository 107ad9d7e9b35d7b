// `gangmig cache`: look at a receiver's page cache, or fill it from files.
#include <cstdio>

#include "cli/commands.h"
#include "cli/flags.h"
#include "store/page_cache.h"

namespace gangmig::cli {

const char kCacheHelp[] =
    "usage: gangmig cache stat DIR\n"
    "       gangmig cache import DIR FILE [FILE ...] [--cache-size MIB]\n\n"
    "The page cache of `gangmig receive --cache DIR`: every distinct page a receiver was\n"
    "sent, on disk, named by its SHA-256 (docs/DESIGN.md, \"The page cache\").\n\n"
    "  stat    size, entries, damaged entries found, and hits/misses since the cache was\n"
    "          created\n"
    "  import  adds the non-zero 4 KiB pages of each FILE (a guest RAM image, a disk\n"
    "          image, any file) so that a later migration finds them there; run it\n"
    "          while no receiver uses DIR (the cache has one writer at a time)\n"
    "  --cache-size MIB  the bound while importing (default 8192; as receive's)\n";

namespace {

int Usage(const char* help, const std::string& error) {
  fprintf(stderr, "gangmig cache: %s\n(gangmig cache --help explains it)\n", error.c_str());
  return 2;
}

void PrintStats(const std::string& dir, const store::CacheStats& s) {
  double lookups = double(s.total_hits + s.total_misses);
  printf("page cache %s\n", dir.c_str());
  printf("  entries   %llu pages (%.1f MiB on disk, %llu segment files)\n",
         (unsigned long long)s.entries, s.bytes / 1048576.0, (unsigned long long)s.segments);
  printf("  damaged   %llu entries found and ignored when opening\n",
         (unsigned long long)s.corrupt);
  printf("  lookups   %llu hits, %llu misses (hit rate %.1f%%) since the cache was created\n",
         (unsigned long long)s.total_hits, (unsigned long long)s.total_misses,
         lookups > 0 ? 100.0 * double(s.total_hits) / lookups : 0.0);
  printf("  written   %llu pages added, %llu evicted since the cache was created\n",
         (unsigned long long)s.total_added, (unsigned long long)s.total_evicted);
}

}  // namespace

int RunCache(const Args& args) {
  if (args.empty()) return Usage(kCacheHelp, "expected stat or import");
  const std::string& what = args[0];
  uint64_t size = uint64_t{8} << 30;
  std::vector<std::string> rest;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--cache-size" && i + 1 < args.size()) {
      auto n = ParseNumber("--cache-size", args[++i], 64, 64 << 20);
      if (!n.ok()) return Usage(kCacheHelp, n.status().message());
      size = uint64_t(*n) << 20;
    } else if (args[i].rfind("--", 0) == 0) {
      return Usage(kCacheHelp, "unknown option '" + args[i] + "'");
    } else {
      rest.push_back(args[i]);
    }
  }
  if (rest.empty()) return Usage(kCacheHelp, "expected the cache directory");
  if ((what == "stat" && rest.size() != 1) || (what == "import" && rest.size() < 2) ||
      (what != "stat" && what != "import"))
    return Usage(kCacheHelp, "expected `stat DIR` or `import DIR FILE...`");
  auto cache = store::PageCache::Open(rest[0], size);
  if (!cache.ok()) {
    fprintf(stderr, "gangmig cache: %s\n", cache.status().message().c_str());
    return 1;
  }
  for (size_t i = 1; i < rest.size(); ++i) {
    auto added = store::ImportFile(cache->get(), rest[i]);
    if (!added.ok()) {
      fprintf(stderr, "gangmig cache: %s\n", added.status().message().c_str());
      return 1;
    }
    printf("%s: %llu new pages\n", rest[i].c_str(), (unsigned long long)*added);
  }
  PrintStats(rest[0], (*cache)->stats());
  return 0;
}

}  // namespace gangmig::cli
