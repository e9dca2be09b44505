// .npy files: what write_npy writes reads back (and has the layout numpy expects), and malformed
// files are errors naming the problem.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "export/npy.h"

namespace duet::export_ {
namespace {

std::string error_of(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("npy round trip, header layout", "[export][npy]") {
  test::TempDir dir;
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  write_npy(dir / "a.npy", "<f4", {2, 3}, values.data());
  const std::string bytes = test::read_file(dir / "a.npy");
  CHECK(bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  CHECK((bytes.size() - 24) % 64 == 0);  // header padded so that data starts 64-aligned
  CHECK_THAT(bytes, Catch::Contains("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
  const NpyArray a = read_npy(dir / "a.npy");
  CHECK(a.descr == "<f4");
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(a.data.data(), values.data(), 24) == 0);

  const std::vector<uint16_t> half = {0x3C00};
  write_npy(dir / "h.npy", "<f2", {1}, half.data());
  CHECK_THAT(test::read_file(dir / "h.npy"), Catch::Contains("'shape': (1,)"));
  CHECK(read_npy(dir / "h.npy").shape == std::vector<int64_t>{1});
  write_npy(dir / "e.npy", "<f4", {0, 8}, nullptr);
  CHECK(read_npy(dir / "e.npy").shape == std::vector<int64_t>{0, 8});
}

TEST_CASE("malformed npy files are errors", "[export][npy]") {
  test::TempDir dir;
  const std::vector<float> values = {1, 2, 3, 4};
  write_npy(dir / "ok.npy", "<f4", {2, 2}, values.data());
  const std::string ok = test::read_file(dir / "ok.npy");
  test::write_file(dir / "short.npy", ok.substr(0, ok.size() - 4));
  CHECK_THAT(error_of(dir / "short.npy"),
             Catch::Contains("needs 16 bytes of data, the file has 12"));
  test::write_file(dir / "magic.npy", "NOTNUMPY");
  CHECK_THAT(error_of(dir / "magic.npy"), Catch::Contains("not a .npy file"));
  std::string f8 = ok;
  f8.replace(f8.find("<f4"), 3, "<f8");
  test::write_file(dir / "f8.npy", f8);
  CHECK_THAT(error_of(dir / "f8.npy"), Catch::Contains("'<f8' is not float32"));
  std::string fortran = ok;
  fortran.replace(fortran.find("False"), 5, "True ");
  test::write_file(dir / "fortran.npy", fortran);
  CHECK_THAT(error_of(dir / "fortran.npy"), Catch::Contains("C order"));
  std::string long_header = ok;
  long_header[8] = '\xff';
  long_header[9] = '\xff';
  test::write_file(dir / "long.npy", long_header);
  CHECK_THAT(error_of(dir / "long.npy"), Catch::Contains("exceeds the file"));
  CHECK_THAT(error_of(dir / "missing.npy"), Catch::Contains("cannot open"));
}

}  // namespace
}  // namespace duet::export_
