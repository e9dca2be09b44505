// CSV/TSV parsing, WebDataset tar reading (grouping, problems, garbled and truncated archives)
// and source resolution.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "data/csv_source.h"
#include "data/source_set.h"
#include "data/webdataset_source.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

std::vector<RawSample> read_all(const std::string& path) {
  TarShardReader reader(path, 0);
  std::vector<RawSample> out;
  RawSample s;
  while (reader.next(s)) {
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("csv: tab-separated with OpenCLIP's default columns, paths relative to the file") {
  TempDir dir("csv");
  std::filesystem::create_directories(dir.path() / "sub");
  write_file(dir.file("sub/a.tsv"),
             "filepath\ttitle\textra\nimg/1.png\ta cat\tx\n/abs/2.jpg\ta dog\ty\r\n\nshort\n");
  const auto rows = read_csv_source(dir.file("sub/a.tsv"), CsvOptions{});
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].image_path == dir.file("sub/img/1.png"));
  CHECK(rows[0].caption == "a cat");
  CHECK(rows[0].line == 2);
  CHECK(rows[1].image_path == "/abs/2.jpg");
  CHECK(rows[1].caption == "a dog");
  CHECK(rows[2].malformed);
  CHECK(rows[2].line == 5);
}

TEST_CASE("csv: comma-separated with quotes and custom column names") {
  TempDir dir("csv2");
  write_file(dir.file("b.csv"), "caption,image\n\"a \"\"big\"\", red\nbus\",x.jpg\nplain,y.jpg\n");
  CsvOptions o;
  o.separator = ",";
  o.img_key = "image";
  o.caption_key = "caption";
  const auto rows = read_csv_source(dir.file("b.csv"), o);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].caption == "a \"big\", red\nbus");
  CHECK(rows[0].image_path == dir.file("x.jpg"));
  CHECK(rows[1].line == 4);
}

TEST_CASE("csv: missing columns and files are errors naming them") {
  TempDir dir("csv3");
  write_file(dir.file("c.csv"), "path,text\na,b\n");
  CsvOptions o;
  o.separator = ",";
  CHECK_THROWS_WITH(read_csv_source(dir.file("c.csv"), o),
                    Catch::Contains("no column 'filepath'") && Catch::Contains("'path', 'text'"));
  CHECK_THROWS_WITH(read_csv_source(dir.file("nope.csv"), o), Catch::Contains("nope.csv"));
  o.separator = ";;";
  CHECK_THROWS_WITH(read_csv_source(dir.file("c.csv"), o), Catch::Contains("one character"));
}

TEST_CASE("csv: a UTF-8 byte order mark does not hide the first column") {
  TempDir dir("csv_bom");
  write_file(dir.file("bom.csv"),
             "\xEF\xBB\xBF"
             "filepath,title\r\nimg.png,a caf\xC3\xA9\r\n");
  CsvOptions o;
  o.separator = ",";
  const auto rows = read_csv_source(dir.file("bom.csv"), o);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].image_path == dir.file("img.png"));
  CHECK(rows[0].caption == "a caf\xC3\xA9");
  CHECK(rows[0].line == 2);
  // Only a leading mark is dropped; one inside a field stays.
  write_file(dir.file("mid.csv"), "filepath,title\nimg.png,\xEF\xBB\xBFx\n");
  CHECK(read_csv_source(dir.file("mid.csv"), o)[0].caption == "\xEF\xBB\xBFx");
}

TEST_CASE("csv: empty files and directories are errors that say so") {
  TempDir dir("csv_empty");
  write_file(dir.file("empty.csv"), "");
  CHECK_THROWS_WITH(read_csv_source(dir.file("empty.csv"), CsvOptions{}),
                    Catch::Contains("empty.csv") && Catch::Contains("is an empty file"));
  write_file(dir.file("blank.csv"), "\n\n");
  CHECK_THROWS_WITH(read_csv_source(dir.file("blank.csv"), CsvOptions{}),
                    Catch::Contains("blank.csv") && Catch::Contains("no header row"));
  std::filesystem::create_directories(dir.path() / "dir.csv");
  CHECK_THROWS_WITH(read_csv_source(dir.file("dir.csv"), CsvOptions{}),
                    Catch::Contains("dir.csv") && Catch::Contains("is a directory"));
  CHECK_THROWS_WITH(resolve_sources({dir.file("dir.csv")}, CsvOptions{}),
                    Catch::Contains("dir.csv") && Catch::Contains("is a directory, not a CSV"));
  CHECK_THROWS_WITH(resolve_sources({dir.file("empty.csv")}, CsvOptions{}),
                    Catch::Contains("is an empty file"));
}

TEST_CASE("webdataset: member names split into key and extension") {
  CHECK(split_member_name("dir/a.b.JPG") ==
        std::make_pair(std::string("dir/a"), std::string("b.jpg")));
  CHECK(split_member_name("x.y/000.txt") ==
        std::make_pair(std::string("x.y/000"), std::string("txt")));
  CHECK(split_member_name("noext") == std::make_pair(std::string("noext"), std::string("")));
}

TEST_CASE("webdataset: members group by key, problems are flagged, not thrown") {
  TempDir dir("wds");
  const std::string png = pattern_png(8, 8, 0);
  write_shard(dir.file("s.tar"),
              {{"k1", {{".jpg", "J"}, {".txt", "cap 1"}, {".json", "{\"a\":1}"}, {".cls", " 7\n"}}},
               {"k2", {{".png", png}}},
               {"k3", {{".txt", "no image"}, {".extra", "ignored"}}},
               {"k4", {{".jpeg", "J4"}, {".txt", ""}}}});
  const auto s = read_all(dir.file("s.tar"));
  REQUIRE(s.size() == 4);
  CHECK(s[0].where == dir.file("s.tar") + ":k1");
  CHECK(s[0].image == "J");
  CHECK(s[0].caption == std::optional<std::string>("cap 1"));
  CHECK(s[0].json == "{\"a\":1}");
  CHECK(s[0].label == std::optional<int64_t>(7));
  CHECK_FALSE(s[0].problem);
  CHECK(s[1].image == png);
  CHECK_FALSE(s[1].caption);
  CHECK(s[2].problem == SkipReason::kMissingImage);
  CHECK(s[3].image == "J4");
  CHECK(s[3].caption == std::optional<std::string>(""));
  CHECK(count_shard_samples(dir.file("s.tar")) == 3);
}

TEST_CASE("webdataset: truncated and garbled archives end the shard with a tar error") {
  TempDir dir("wds_bad");
  write_valid_shard(dir.file("ok.tar"), "a", 6);
  std::string bytes;
  {
    std::ifstream in(dir.file("ok.tar"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Truncated in the middle of a member's data.
  write_file(dir.file("cut.tar"), bytes.substr(0, 512 * 9 + 100));
  const auto cut = read_all(dir.file("cut.tar"));
  REQUIRE_FALSE(cut.empty());
  CHECK(cut.back().problem == SkipReason::kTarError);
  int good = 0;
  for (const auto& s : cut) {
    good += s.problem ? 0 : 1;
  }
  CHECK(good < 6);

  // A garbled header in the middle: one tar error, the member behind it is lost, and reading
  // resumes at the next valid header.
  std::string garbled = bytes;
  const size_t header = bytes.find("a_0003.png");
  REQUIRE(header != std::string::npos);
  for (size_t i = header; i < header + 512 && i < garbled.size(); ++i) {
    garbled[i] = static_cast<char>(0xA5 ^ (i & 0xff));
  }
  write_file(dir.file("garbled.tar"), garbled);
  const auto g = read_all(dir.file("garbled.tar"));
  REQUIRE(g.size() == 7);
  CHECK_FALSE(g[2].problem);
  CHECK(g[3].problem == SkipReason::kTarError);
  CHECK(g[4].where == dir.file("garbled.tar") + ":a_0003");
  CHECK(g[4].problem == SkipReason::kMissingImage);
  CHECK_FALSE(g[6].problem);
  CHECK(g[6].caption == std::optional<std::string>("a 5"));

  // Not a tar at all.
  write_file(dir.file("junk.tar"), std::string(3000, 'x'));
  const auto j = read_all(dir.file("junk.tar"));
  REQUIRE(j.size() == 1);
  CHECK(j[0].problem == SkipReason::kTarError);
}

TEST_CASE("sources: patterns, directories and CSVs resolve to shards, bad ones are errors") {
  TempDir dir("src");
  for (int i = 0; i < 3; ++i) {
    write_valid_shard(dir.file("s" + std::to_string(i) + ".tar"), "k", 2);
  }
  std::string csv = "filepath\ttitle\n";
  for (int i = 0; i < 2500; ++i) {
    csv += "x.png\tcap\n";
  }
  write_file(dir.file("d.tsv"), csv);
  const SourceSet set = resolve_sources(
      {dir.file("s{0..2}.tar"), dir.file("d.tsv"), dir.path().string()}, CsvOptions{});
  REQUIRE(set.names.size() == 3);
  REQUIRE(set.shards.size() == 3 + 3 + 3);  // 3 tars, 2500 rows in 3 CSV shards, 3 tars again
  CHECK(set.shards[3].is_csv());
  CHECK(set.shards[5].row_end - set.shards[5].row_begin == 2500 - 2 * kCsvShardRows);
  CHECK(set.shards[6].source == 2);
  const auto counts = count_samples(set);
  CHECK(counts[0] == 2);
  CHECK(counts[3] == kCsvShardRows);

  CHECK_THROWS_WITH(resolve_sources({dir.file("s{0..3}.tar")}, CsvOptions{}),
                    Catch::Contains("s3.tar") && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(resolve_sources({dir.file("s{0..2.tar")}, CsvOptions{}),
                    Catch::Contains("unbalanced"));
  write_file(dir.file("x.zip"), "z");
  CHECK_THROWS_WITH(resolve_sources({dir.file("x.zip")}, CsvOptions{}),
                    Catch::Contains("cannot tell the kind"));
  write_file(dir.file("empty.csv"), "filepath\ttitle\n");
  CHECK_THROWS_WITH(resolve_sources({dir.file("empty.csv")}, CsvOptions{}),
                    Catch::Contains("no rows"));
}
