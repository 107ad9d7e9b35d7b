#include <zstd.h>
#include <cmath>
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
  std::vector<const uint8_t*> d; std::unordered_set<std::string> seen; static uint8_t zero[4096];
  for(int i=1;i<argc;i++){int fd=open(argv[i],O_RDONLY);struct stat st;fstat(fd,&st);
    auto*p=(const uint8_t*)mmap(0,st.st_size,PROT_READ,MAP_PRIVATE,fd,0);
    for(size_t o=0;o+4096<=(size_t)st.st_size;o+=4096){ if(!memcmp(p+o,zero,4096))continue;
      std::string k((const char*)p+o,4096); if(seen.insert(k).second) d.push_back(p+o);} }
  int piece=64, samp=atoi(getenv("SAMP")?getenv("SAMP"):"256"); 
  std::vector<uint8_t> in(piece*4096), out(ZSTD_compressBound(piece*4096)); ZSTD_CCtx*c=ZSTD_createCCtx();
  struct B{double ent; size_t raw,best;}; std::vector<B> bs; double tent=0;
  for(size_t i=0;i<d.size();i+=piece){size_t n=std::min((size_t)piece,d.size()-i); for(size_t j=0;j<n;j++)memcpy(&in[j*4096],d[i+j],4096);
    double t0=cpu(); uint32_t h[256]={0}; size_t tot=0; for(size_t j=0;j<n;j++){const uint8_t*p=&in[j*4096]; for(int k=0;k<samp;k++)h[p[k*(4096/samp)]]++; tot+=samp;}
    double e=0; for(int k=0;k<256;k++) if(h[k]){double q=double(h[k])/tot; e-=q*log2(q);} tent+=cpu()-t0;
    size_t z=ZSTD_compressCCtx(c,out.data(),out.size(),in.data(),n*4096,1); size_t best=z*50>n*4096*49?n*4096:z; bs.push_back({e,n*4096,best});}
  printf("samp %d: entropy cpu %.4fs for %zu bodies\n",samp,tent,bs.size());
  for(double th: {7.0,7.5,7.8,7.9,7.95,7.97,7.98}){ size_t sent=0,lost=0,skipped=0,skrand=0; for(auto&b:bs){ if(b.ent>th){sent+=b.raw; lost+=b.raw-b.best; skipped++; if(b.best==b.raw)skrand++;} else sent+=b.best;}
    size_t allr=0; for(auto&b:bs) allr+=(b.best==b.raw);
    printf(" th %.2f: skipped %zu bodies (%zu of them incompressible; %zu incompressible in all), lost %.2f MB of %.1f MB\n",th,skipped,skrand,allr,lost/1e6,sent/1e6);}
}
