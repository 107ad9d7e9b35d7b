// Splits one guest's distinct non-zero pages into incompressible (zstd -1 ratio > 0.97 per page)
// and the rest, and compresses the rest as one stream at several settings: how far below
// per-piece zstd -1 could any zstd setting go?
#include <zstd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>
#include <unordered_set>
#include <ctime>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
static double cpu(){timespec t;clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  std::vector<const uint8_t*> distinct; std::unordered_set<std::string> seen; static uint8_t zero[4096];
  for(int i=1;i<argc;i++){int fd=open(argv[i],O_RDONLY);struct stat st;fstat(fd,&st);
    auto*p=(const uint8_t*)mmap(0,st.st_size,PROT_READ,MAP_PRIVATE,fd,0);
    for(size_t o=0;o+4096<=(size_t)st.st_size;o+=4096){ if(!memcmp(p+o,zero,4096))continue;
      std::string k((const char*)p+o,4096); if(seen.insert(k).second) distinct.push_back(p+o);} }
  ZSTD_CCtx*c=ZSTD_createCCtx(); std::vector<uint8_t> out(1<<20);
  std::vector<uint8_t> rest; size_t nrand=0;
  for(auto*p:distinct){ size_t z=ZSTD_compressCCtx(c,out.data(),out.size(),p,4096,1); if(z*100>4096*97) nrand++; else rest.insert(rest.end(),p,p+4096);}
  printf("distinct %zu pages: incompressible %zu (%.1f MB), rest %zu (%.1f MB)\n",distinct.size(),nrand,nrand*4096/1e6,rest.size()/4096,rest.size()/1e6);
  // per-piece level 1 on rest
  size_t tot=0; double t0=cpu(); for(size_t i=0;i<rest.size();i+=262144){size_t n=std::min<size_t>(262144,rest.size()-i); tot+=ZSTD_compressCCtx(c,out.data(),out.size(),rest.data()+i,n,1);} 
  printf("rest, 256 KiB pieces, zstd -1: %.1f MB (%.2fs)\n",tot/1e6,cpu()-t0);
  for(int lvl: {1,3,9,19}){ ZSTD_CCtx*s=ZSTD_createCCtx(); ZSTD_CCtx_setParameter(s,ZSTD_c_compressionLevel,lvl); ZSTD_CCtx_setParameter(s,ZSTD_c_windowLog,27); ZSTD_CCtx_setParameter(s,ZSTD_c_enableLongDistanceMatching,1);
    std::vector<uint8_t> big(ZSTD_compressBound(rest.size())); t0=cpu(); size_t z=ZSTD_compress2(s,big.data(),big.size(),rest.data(),rest.size());
    printf("rest, one stream, zstd -%d --long=27: %.1f MB (%.2fs)\n",lvl,z/1e6,cpu()-t0); ZSTD_freeCCtx(s);}
}
