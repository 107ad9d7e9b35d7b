#include "testbed/guest_image.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace gangmig::testbed {
namespace {

TEST(TestbedGuestImageTest, MissingFilesTellHowToBuild) {
  char tmpl[] = "/tmp/gangmig-img-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto image = GuestImage::Locate(dir);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find(dir + "/vmlinuz not found"), std::string::npos);
  EXPECT_NE(image.status().message().find("guest/build-guest.sh"), std::string::npos);

  std::ofstream(dir + "/vmlinuz") << "k";
  image = GuestImage::Locate(dir);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find(dir + "/initrd.img not found"), std::string::npos);

  std::ofstream(dir + "/initrd.img") << "i";
  image = GuestImage::Locate(dir);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->kernel, dir + "/vmlinuz");
  EXPECT_EQ(image->initrd, dir + "/initrd.img");
  std::filesystem::remove_all(dir);
}

TEST(TestbedGuestImageTest, DirFromEnv) {
  const char* old = getenv("GANGMIG_GUEST_DIR");
  std::string saved = old ? old : "";
  setenv("GANGMIG_GUEST_DIR", "/some/where", 1);
  EXPECT_EQ(GuestImage::DirFromEnv("/fallback"), "/some/where");
  setenv("GANGMIG_GUEST_DIR", "", 1);
  EXPECT_EQ(GuestImage::DirFromEnv("/fallback"), "/fallback");
  if (old) {
    setenv("GANGMIG_GUEST_DIR", saved.c_str(), 1);
  } else {
    unsetenv("GANGMIG_GUEST_DIR");
  }
}

}  // namespace
}  // namespace gangmig::testbed
