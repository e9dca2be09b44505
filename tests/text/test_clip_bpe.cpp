// CLIP BPE against OpenAI's reference tokenizer: the 119 shared golden cases with the plain and
// the gzipped merges file, extra edge cases whose ids came from simple_tokenizer.py, the Python
// string semantics underneath (html.unescape, str.lower, whitespace), decoding, truncation, and
// the errors a bad merges file gives.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/error.h"
#include "text/clip_bpe.h"
#include "text/html_unescape.h"
#include "text/unicode.h"
#include "text_test_util.h"

namespace duet::text {
namespace {

using test::TempDir;

const ClipBpeTokenizer& clip() {
  static const ClipBpeTokenizer tokenizer(test::clip_merges_gz());
  return tokenizer;
}

std::string utf8(std::u32string_view text) { return encode_utf8(text); }

std::string unescape(const std::string& text) {
  return encode_utf8(html_unescape(decode_utf8(text)));
}

// The runtime Error `make` throws, or fails the test.
template <class F>
Error error_of(F&& make) {
  try {
    make();
  } catch (const Error& e) {
    return e;
  }
  FAIL("no duet::Error was thrown");
  return Error(ErrorKind::kRuntime, "");
}

TEST_CASE("clip bpe reproduces the reference ids of every golden case, plain and gzipped") {
  const auto& cases = test::golden_cases();
  REQUIRE(cases.size() == 119);
  const ClipBpeTokenizer plain(test::clip_merges_plain());
  int matched = 0;
  for (const ClipBpeTokenizer* tokenizer : {&clip(), &plain}) {
    for (const auto& golden : cases) {
      INFO("text: '" << golden.text << "'");
      const std::vector<int64_t> ids = tokenizer->encode(golden.text);
      const std::vector<int64_t> tokens = tokenizer->tokenize(golden.text, 77);
      CHECK(ids == golden.bpe);
      CHECK(tokens == golden.tokens77);
      matched += ids == golden.bpe && tokens == golden.tokens77;
    }
  }
  CHECK(matched == 2 * 119);
}

TEST_CASE("clip bpe matches the reference on entities, casing, whitespace and scripts") {
  // Ids from OpenAI CLIP's simple_tokenizer.py (regex 2026.11.15, Python 3.11, with ftfy's
  // fix_text replaced by NFC as duet assumes).
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {u8"&amp;amp;lt;b&amp;gt; &notit; &#x41;&#66 &#128; &#0; &#1;x &#xD800; &#99999999999; &#; "
       u8"&ampxyz &acE;",
       {261,   3333,  282, 321, 285, 126, 361,   585, 282,   3937, 6309, 39802, 343,
        39802, 39802, 5,   2,   282, 261, 20023, 345, 17788, 122,  136,  367}},
      {u8"\u039F\u0394\u039F\u03A3 \u03A3\u0391\u03A3 \u03A3 \u0391\u03A3'\u0392",
       {138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 109,
        139, 480, 139, 481, 138, 109, 139, 481, 262, 138, 366}},
      {u8"\u0130stanbul \u01C5emal", {328, 16384, 11231, 131, 228, 908, 566}},
      {u8"don'\u017F <|\u017Ftartoftext|> <|endoftext|>x<|startoftext|>",
       {847, 6, 129, 379, 27, 91, 129, 123, 2002, 6659, 18169, 91, 285, 49407, 343, 49406}},
      {u8"tab\011nbsp\u00A0ideo\u3000sep\034end\035",
       {14724, 6459, 4393, 1909, 334, 10434, 472, 806}},
      {u8"e\u0301 cafe\u0301 \u00C5", {4166, 15304, 127, 354}},
      {u8"a\u0345b", {320, 321}},
      {u8"\u0661\u0662\u0663 \u00BD \u216B x\u00B2",
       {149, 350, 149, 351, 149, 352, 33613, 158, 227, 375, 343, 41175}},
      {u8"\u092E\u0930\u093E\u0920\u0940 \u092D\u093E\u0937\u093E",
       {48254, 19052, 13343, 3124, 510, 25751, 3124, 511, 13343, 3124, 371, 13343}},
      {u8"\U0001F469\u200D\U0001F469\u200D\U0001F467 \U0001F1EB\U0001F1F7",
       {26304, 26304, 964, 356, 16223}},
      {u8"''s \u2019s --- ...!!", {8445, 338, 728, 503, 338, 11079, 39915}},
  };
  for (const auto& [text, ids] : cases) {
    INFO("text: '" << text << "'");
    CHECK(clip().encode(text) == ids);
  }
}

TEST_CASE("clip bpe info and special tokens") {
  const TokenizerInfo info = clip().info();
  CHECK(info.vocab_size == 49408);
  CHECK(info.sot_id == 49406);
  CHECK(info.eot_id == 49407);
  CHECK(info.pad_id == 0);
  CHECK(info.unk_id == -1);
  CHECK(clip().encode("") == std::vector<int64_t>{});
  CHECK(clip().encode("<|startoftext|>") == std::vector<int64_t>{49406});
  CHECK(clip().encode("<|ENDOFTEXT|>") == std::vector<int64_t>{49407});  // lower-cased first
}

TEST_CASE("tokenize truncates to the context length keeping EOT last, and pads with zeros") {
  const std::vector<int64_t> body = clip().encode("a photo of a dog");
  REQUIRE(body == std::vector<int64_t>{320, 1125, 539, 320, 1929});
  CHECK(clip().tokenize("a photo of a dog", 8) ==
        std::vector<int64_t>{49406, 320, 1125, 539, 320, 1929, 49407, 0});
  CHECK(clip().tokenize("a photo of a dog", 7) ==
        std::vector<int64_t>{49406, 320, 1125, 539, 320, 1929, 49407});
  CHECK(clip().tokenize("a photo of a dog", 4) == std::vector<int64_t>{49406, 320, 1125, 49407});
  CHECK(clip().tokenize("a photo of a dog", 2) == std::vector<int64_t>{49406, 49407});
  CHECK(clip().tokenize("a photo of a dog", 1) == std::vector<int64_t>{49407});
  CHECK(clip().tokenize("", 3) == std::vector<int64_t>{49406, 49407, 0});
  CHECK_THROWS_AS(clip().tokenize("a dog", 0), Error);
}

TEST_CASE("clip bpe decodes ids as the reference does") {
  CHECK(clip().decode(clip().encode("A Photo of a Dog!")) == "a photo of a dog ! ");
  CHECK(clip().decode({49406, 320, 49407}) == "<|startoftext|>a <|endoftext|>");
  // Half of a two-byte character: Python's errors="replace" gives U+FFFD.
  CHECK(clip().decode({127}) == u8"\uFFFD");
  CHECK_THROWS_AS(clip().decode({49408}), Error);
  CHECK_THROWS_AS(clip().decode({-1}), Error);
}

TEST_CASE("text cleaning follows Python: NFC, html.unescape twice, whitespace, str.lower") {
  CHECK(utf8(clip_clean_text("  A\tPHOTO \n\n of\u00A0a  DOG  ")) == "a photo of a dog");
  CHECK(utf8(clip_clean_text("Tom&amp;amp;Jerry")) == "tom&jerry");
  CHECK(utf8(clip_clean_text("&amp;amp;amp;")) == "&amp;");   // exactly two passes
  CHECK(utf8(clip_clean_text(u8"e\u0301")) == u8"\u00E9");    // NFC before unescaping ...
  CHECK(utf8(clip_clean_text(u8"e&#x301;")) == u8"e\u0301");  // ... and not after
  // str.strip() drops U+001C..U+001F, regex's \s does not collapse them.
  CHECK(utf8(clip_clean_text("\x1c"
                             "a\x1f b\x1d")) == "a\x1f b");
  CHECK(utf8(clip_clean_text(u8"\u0130")) == u8"i\u0307");
  CHECK(utf8(clip_clean_text(u8"\u039F\u0394\u039F\u03A3 \u03A3")) ==
        u8"\u03BF\u03B4\u03BF\u03C2 \u03C3");
  // Invalid UTF-8 becomes U+FFFD, one per maximal ill-formed subsequence.
  CHECK(utf8(clip_clean_text("a\xC3(\xE2\x82 \xF0\x9F\x98")) == u8"a\uFFFD(\uFFFD \uFFFD");
}

TEST_CASE("html_unescape follows Python's html.unescape") {
  CHECK(unescape("&lt;&gt;&amp;&quot;&#39;") == "<>&\"'");
  CHECK(unescape("&notit; &notin; &not") == u8"\u00ACit; \u2209 \u00AC");
  CHECK(unescape("&ampxyz &amp") == "&xyz &");
  CHECK(unescape("&#65;&#x42;&#X43&#68x") == "ABCDx");
  CHECK(unescape("&#128;&#150;") == u8"\u20AC\u2013");  // HTML5's Windows-1252 remapping
  CHECK(unescape("&#0;&#xD800;&#1114112;&#99999999999999999999;") == u8"\uFFFD\uFFFD\uFFFD\uFFFD");
  CHECK(unescape("a&#1;b&#x7F;c&#xFFFF;d") == "abcd");
  CHECK(unescape("&#; &#x; & &; &unknown; &;;") == "&#; &#x; & &; &unknown; &;;");
  CHECK(unescape("&acE;&NewLine;") == u8"\u223E\u0333\n");
  CHECK(unescape("&amp;amp;") == "&amp;");
  // At most 32 name characters are read: the 33rd stays.
  CHECK(unescape("&" + std::string(40, 'a') + ";") == "&" + std::string(40, 'a') + ";");
}

TEST_CASE("pre-tokenising follows the reference regex") {
  auto pieces = [](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& piece : clip_pre_tokenize(decode_utf8(text))) {
      out.push_back(encode_utf8(piece));
    }
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces("it's a dog's life, isn't it?") ==
        V{"it", "'s", "a", "dog", "'s", "life", ",", "isn", "'t", "it", "?"});
  CHECK(pieces("we'll've 'd'm") == V{"we", "'ll", "'ve", "'d", "'m"});
  CHECK(pieces("3.14 42") == V{"3", ".", "1", "4", "4", "2"});
  CHECK(pieces("x<|endoftext|>y <|startoftext|>") ==
        V{"x", "<|endoftext|>", "y", "<|startoftext|>"});
  CHECK(pieces("!<|endoftext|>") == V{"!<|", "endoftext", "|>"});
  CHECK(pieces(u8"'\u017F") == V{u8"'\u017F"});  // IGNORECASE: LONG S matches 's'
  CHECK(pieces(u8"a\u0345b") == V{"a", "b"});
}

TEST_CASE("a missing, empty or corrupt merges file is an error naming tokenizer.path") {
  const TempDir dir;
  SECTION("missing") {
    const std::string path = dir.path("nope.txt.gz");
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK(e.kind() == ErrorKind::kRuntime);
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("No such file"));
  }
  SECTION("empty") {
    const std::string path = dir.path("empty.txt");
    test::write_file(path, "");
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("is empty"));
  }
  SECTION("a gzip file cut short") {
    const std::string gz = test::read_file(test::clip_merges_gz());
    const std::string path = dir.path("cut.txt.gz");
    test::write_file(path, gz.substr(0, gz.size() / 2));
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("does not decompress") &&
                             Catch::Contains("truncated"));
  }
  SECTION("gzip magic followed by garbage") {
    const std::string path = dir.path("garbage.gz");
    test::write_file(path, std::string("\x1f\x8b", 2) + std::string(100, 'x'));
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("does not decompress"));
  }
  SECTION("too few merges") {
    const std::string plain = test::read_file(test::clip_merges_plain());
    size_t end = 0;
    for (int line = 0; line < 1001; ++line) {
      end = plain.find('\n', end) + 1;
    }
    const std::string path = dir.path("short.txt");
    test::write_file(path, plain.substr(0, end));
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("has 1000 merges") &&
                             Catch::Contains("48894"));
  }
  SECTION("a line that is not two symbols") {
    const std::string path = dir.path("three.txt");
    test::write_file(path, "#version: 0.2\ni n\nt h e\n");
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains("line 3") && Catch::Contains("'t h e'") &&
                             Catch::Contains("expected two symbols"));
  }
  SECTION("a merge of unknown symbols") {
    std::string plain = test::read_file(test::clip_merges_plain());
    const size_t line5 = [&] {
      size_t at = 0;
      for (int line = 0; line < 4; ++line) {
        at = plain.find('\n', at) + 1;
      }
      return at;
    }();
    plain.replace(line5, plain.find('\n', line5) - line5, "zz q");
    const std::string path = dir.path("unknown.txt");
    test::write_file(path, plain);
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains("line 5") && Catch::Contains("'zz'") &&
                             Catch::Contains("neither a byte symbol"));
  }
  SECTION("random bytes") {
    std::string bytes;
    uint32_t state = 12345;
    for (int i = 0; i < 100000; ++i) {
      state = state * 1664525u + 1013904223u;
      bytes.push_back(static_cast<char>(state >> 24));
    }
    bytes[0] = 'x';  // not gzip magic
    const std::string path = dir.path("random.bin");
    test::write_file(path, bytes);
    const Error e = error_of([&] { ClipBpeTokenizer t(path); });
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path));
  }
}

}  // namespace
}  // namespace duet::text
