// safetensors reading and writing: round trips of every dtype, and malformed files, each of
// which must be a duet::Error naming the problem (never a crash or a silent misread).
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "export/safetensors.h"

namespace duet::export_ {
namespace {

std::string u64_le(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  return out;
}

// A file with this JSON header and `data` bytes after it.
std::string file_with(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

// What reading `bytes` throws ("" when it does not).
std::string read_error(const std::string& bytes) {
  try {
    SafetensorsFile::from_bytes(bytes, "bad.safetensors");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kRuntime);
    CHECK_THAT(e.what(), Catch::Contains("bad.safetensors"));
    return e.what();
  }
  return "";
}

TEST_CASE("safetensors round trip: dtypes, shapes, metadata, empty tensors",
          "[export][safetensors]") {
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  const std::vector<int64_t> i64 = {1, -2, 3};
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000};  // 1.0, -2.0
  const std::vector<uint8_t> flags = {1, 0, 1};
  const std::vector<TensorView> tensors = {
      {"a.weight", Dtype::kF32, {2, 3}, f32.data()}, {"ids", Dtype::kI64, {3}, i64.data()},
      {"half", Dtype::kF16, {2}, f16.data()},        {"scalar", Dtype::kF32, {}, f32.data()},
      {"empty", Dtype::kF32, {0, 4}, nullptr},       {"flags", Dtype::kBool, {3}, flags.data()},
  };
  const std::string bytes = serialize_safetensors(tensors, {{"format", "pt"}, {"note", "é"}});
  // The header is padded so that the data starts 8-byte aligned.
  CHECK((8 + bytes[0]) % 8 == 0);

  const SafetensorsFile file = SafetensorsFile::from_bytes(bytes, "mem");
  REQUIRE(file.tensors().size() == tensors.size());
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.metadata().at("note") == "é");
  const TensorEntry* a = file.find("a.weight");
  REQUIRE(a != nullptr);
  CHECK(a->dtype == Dtype::kF32);
  CHECK(a->shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(file.data(*a).data(), f32.data(), 24) == 0);
  CHECK(file.find("scalar")->shape.empty());
  CHECK(file.data(*file.find("scalar")).size() == 4);
  CHECK(file.data(*file.find("empty")).empty());
  CHECK(std::memcmp(file.data(*file.find("ids")).data(), i64.data(), 24) == 0);
  CHECK(file.find("missing") == nullptr);

  // On disk, atomically.
  test::TempDir dir;
  write_safetensors(dir / "t.safetensors", tensors, {{"format", "pt"}});
  const SafetensorsFile on_disk(dir / "t.safetensors");
  CHECK(on_disk.tensors().size() == tensors.size());
  CHECK(on_disk.data(*on_disk.find("a.weight")) == file.data(*a));
  CHECK_FALSE(std::filesystem::exists(dir / "t.safetensors.tmp"));
}

TEST_CASE("every safetensors dtype name parses and has its size", "[export][safetensors]") {
  for (const char* name : {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                           "F64", "I64", "U64", "F8_E4M3", "F8_E5M2"}) {
    INFO(name);
    const auto dtype = parse_dtype(name);
    REQUIRE(dtype.has_value());
    CHECK(std::string(dtype_name(*dtype)) == name);
    CHECK(dtype_size(*dtype) >= 1);
  }
  CHECK_FALSE(parse_dtype("F128").has_value());
  CHECK(dtype_size(Dtype::kBF16) == 2);
  CHECK(dtype_size(Dtype::kF64) == 8);
}

TEST_CASE("malformed safetensors files are errors that say what is wrong",
          "[export][safetensors]") {
  const std::string eight(8, 'x');
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  CHECK(read_error(file_with("{" + ok_entry + "}", eight)).empty());  // the baseline is valid

  // {description, bytes, expected part of the message}
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"empty file", "", "fewer than the 8-byte header length"},
      {"7 bytes", std::string(7, '\0'), "fewer than the 8-byte header length"},
      {"header longer than the file", u64_le(100) + "{}", "header length 100 exceeds"},
      {"header over the limit", u64_le(200'000'000) + "{}", "header length 200000000"},
      {"header length 2^64-1", u64_le(~uint64_t{0}) + "{}", "exceeds"},
      {"not JSON", file_with("{nope", ""), "not valid JSON"},
      {"JSON array", file_with("[1,2]", ""), "must be a JSON object"},
      {"empty header", file_with("", ""), "must be a JSON object"},
      {"trailing garbage after JSON", file_with("{} x", ""), "not valid JSON"},
      {"duplicate tensor name", file_with("{" + ok_entry + "," + ok_entry + "}", eight),
       "the key 't' twice"},
      {"duplicate field",
       file_with(R"({"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight),
       "the key 'dtype' twice"},
      {"unknown dtype",
       file_with(R"({"t":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", eight),
       "unknown dtype 'F128'"},
      {"dtype not a string",
       file_with(R"({"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", eight),
       "no dtype string"},
      {"missing shape", file_with(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", eight),
       "no shape array"},
      {"negative dimension",
       file_with(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
       "invalid shape"},
      {"fractional dimension",
       file_with(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight),
       "invalid shape"},
      {"unknown field",
       file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", eight),
       "unknown field 'x'"},
      {"entry not an object", file_with(R"({"t":[1]})", ""), "must be an object"},
      {"offsets not a pair",
       file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight),
       "data_offsets [begin, end]"},
      {"negative offset",
       file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", eight),
       "data_offsets [begin, end]"},
      {"begin after end",
       file_with(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight),
       "begin > end"},
      {"past the data section",
       file_with(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight),
       "outside the data section of 8 bytes"},
      {"offsets far past the file",
       file_with(
           R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551600,18446744073709551608]}})",
           eight),
       "outside the data section"},
      {"shape and bytes disagree",
       file_with(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
       "is F32 [3] (12 bytes) but its data_offsets [0, 8] span 8 bytes"},
      {"dtype size and bytes disagree",
       file_with(R"({"t":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight),
       "span 8 bytes"},
      {"shape overflows",
       file_with(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})",
                 eight),
       "too many"},
      {"overlapping tensors",
       file_with(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           eight),
       "overlap"},
      {"a gap between tensors",
       file_with(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
           eight),
       "belong to no tensor"},
      {"bytes after the last tensor", file_with("{" + ok_entry + "}", eight + "xx"),
       "the data section has 10 bytes but the tensors cover 8"},
      {"metadata not an object", file_with(R"({"__metadata__":[1]})", ""), "__metadata__ must be"},
      {"metadata value not a string", file_with(R"({"__metadata__":{"k":1}})", ""),
       "__metadata__ value of 'k' must be a string"},
      {"empty tensor name",
       file_with(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight), "empty name"},
  };
  for (const auto& [what, bytes, expected] : cases) {
    INFO(what);
    CHECK_THAT(read_error(bytes), Catch::Contains(expected));
  }
}

TEST_CASE("reading files: missing, directories, truncated on disk", "[export][safetensors]") {
  test::TempDir dir;
  auto error_of = [](const std::string& path) -> std::string {
    try {
      SafetensorsFile file(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(error_of(dir / "missing.safetensors"), Catch::Contains("does not exist"));
  CHECK_THAT(error_of(dir.path().string()), Catch::Contains("not a regular file"));
  const float values[2] = {1.0f, 2.0f};
  write_safetensors(dir / "ok.safetensors", {{"t", Dtype::kF32, {2}, values}});
  std::string bytes = test::read_file(dir / "ok.safetensors");
  test::write_file(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  CHECK_THAT(error_of(dir / "cut.safetensors"), Catch::Contains("outside the data section"));
  test::write_file(dir / "header-only.safetensors", bytes.substr(0, 12));
  CHECK_THAT(error_of(dir / "header-only.safetensors"), Catch::Contains("exceeds the file"));
}

TEST_CASE("writing rejects duplicate, empty and reserved names", "[export][safetensors]") {
  const float v = 1.0f;
  auto error_of = [](const std::vector<TensorView>& tensors) -> std::string {
    try {
      serialize_safetensors(tensors);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(error_of({{"a", Dtype::kF32, {}, &v}, {"a", Dtype::kF32, {}, &v}}),
             Catch::Contains("duplicate"));
  CHECK_THAT(error_of({{"", Dtype::kF32, {}, &v}}), Catch::Contains("empty"));
  CHECK_THAT(error_of({{"__metadata__", Dtype::kF32, {}, &v}}), Catch::Contains("reserved"));
  CHECK_THAT(error_of({{"n", Dtype::kF32, {-1}, &v}}), Catch::Contains("negative dimension"));
}

}  // namespace
}  // namespace duet::export_
