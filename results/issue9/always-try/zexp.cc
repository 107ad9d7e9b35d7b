#include <zstd.h>
#include <cstdio>
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
struct H{size_t operator()(const std::string&s)const{return std::hash<std::string_view>()(std::string_view(s));}};
int main(int argc,char**argv){
  // args: files...
  std::vector<const uint8_t*> all, distinct;
  std::unordered_set<std::string> seen;
  static uint8_t zero[4096];
  for(int i=1;i<argc;i++){int fd=open(argv[i],O_RDONLY);struct stat st;fstat(fd,&st);
    auto*p=(const uint8_t*)mmap(0,st.st_size,PROT_READ,MAP_PRIVATE,fd,0);
    for(size_t o=0;o+4096<=(size_t)st.st_size;o+=4096){ if(!memcmp(p+o,zero,4096))continue; all.push_back(p+o);
      std::string k((const char*)p+o,4096); if(seen.insert(k).second) distinct.push_back(p+o);} }
  printf("nonzero %zu distinct %zu\n",all.size(),distinct.size());
  std::vector<uint8_t> in(1<<20), out(ZSTD_compressBound(1<<20)+1024);
  // one-shot per piece
  auto oneshot=[&](std::vector<const uint8_t*>&pg,int piece,int level){ size_t tot=0; double t0=cpu(); ZSTD_CCtx*c=ZSTD_createCCtx();
    for(size_t i=0;i<pg.size();i+=piece){size_t n=std::min((size_t)piece,pg.size()-i); for(size_t j=0;j<n;j++)memcpy(&in[j*4096],pg[i+j],4096);
      tot+=ZSTD_compressCCtx(c,out.data(),out.size(),in.data(),n*4096,level);} ZSTD_freeCCtx(c);
    printf("oneshot piece=%d lvl=%d : %.1f MB  cpu %.2fs\n",piece,level,tot/1e6,cpu()-t0);};
  auto stream=[&](std::vector<const uint8_t*>&pg,int piece,int level,int nstreams,int wlog,int ldm,const char*tag){ size_t tot=0; double t0=cpu();
    std::vector<ZSTD_CCtx*> cs; for(int s=0;s<nstreams;s++){auto*c=ZSTD_createCCtx(); ZSTD_CCtx_setParameter(c,ZSTD_c_compressionLevel,level);
      if(wlog)ZSTD_CCtx_setParameter(c,ZSTD_c_windowLog,wlog); if(ldm)ZSTD_CCtx_setParameter(c,ZSTD_c_enableLongDistanceMatching,1); cs.push_back(c);}
    size_t k=0; for(size_t i=0;i<pg.size();i+=piece,k++){size_t n=std::min((size_t)piece,pg.size()-i); for(size_t j=0;j<n;j++)memcpy(&in[j*4096],pg[i+j],4096);
      ZSTD_inBuffer ib{in.data(),n*4096,0}; ZSTD_outBuffer ob{out.data(),out.size(),0};
      size_t r; do{ r=ZSTD_compressStream2(cs[k%nstreams],&ob,&ib,ZSTD_e_flush);}while(r); tot+=ob.pos;}
    for(auto*c:cs)ZSTD_freeCCtx(c);
    printf("%s stream piece=%d lvl=%d n=%d wlog=%d ldm=%d : %.1f MB cpu %.2fs\n",tag,piece,level,nstreams,wlog,ldm,tot/1e6,cpu()-t0);};
  stream(all,128,1,2,0,0,"multifd-like(all)");
  oneshot(distinct,64,1);
  oneshot(distinct,64,3);
  stream(distinct,64,1,1,0,0,"distinct");
  stream(distinct,64,1,2,0,0,"distinct");
  stream(distinct,64,1,2,23,0,"distinct");
  stream(distinct,64,1,2,27,1,"distinct");
  stream(distinct,64,3,2,0,0,"distinct");
  stream(distinct,64,3,2,27,1,"distinct");
  stream(distinct,64,-1,2,0,0,"distinct");
}
