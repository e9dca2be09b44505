// CSV/TSV parsing (see csv_source.h): a small RFC 4180 state machine over the whole file.
#include "data/csv_source.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace duet::data {
namespace {

char separator_char(const std::string& separator) {
  if (separator == "\\t" || separator == "tab") {
    return '\t';
  }
  DUET_CHECK(separator.size() == 1, "data.csv_separator must be one character (or \\t), got '{}'",
             separator);
  return separator[0];
}

// Splits `text` into records of fields.
struct Record {
  int64_t line = 0;
  std::vector<std::string> fields;
};

std::vector<Record> parse(const std::string& text, char sep) {
  std::vector<Record> records;
  Record current;
  std::string field;
  bool quoted = false;
  bool field_started = false;  // something (even "") was read into this record
  int64_t line = 1;
  current.line = 1;
  auto end_field = [&] {
    current.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    if (field_started || !field.empty() || !current.fields.empty()) {
      end_field();
      records.push_back(std::move(current));
    }
    current = Record{};
    current.line = line;
    field_started = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') {
          ++line;
        }
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
      field_started = true;
    } else if (c == sep) {
      end_field();
      field_started = true;
    } else if (c == '\n') {
      ++line;
      end_record();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // CRLF: the '\n' ends the record
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  end_record();
  return records;
}

}  // namespace

std::vector<CsvRow> read_csv_source(const std::string& path, const CsvOptions& options) {
  const char sep = separator_char(options.separator);
  std::error_code ec;
  // An ifstream opens a directory without complaint and then reads nothing.
  DUET_CHECK(!std::filesystem::is_directory(path, ec),
             "CSV source '{}' is a directory, not a CSV/TSV file", path);
  std::ifstream in(path, std::ios::binary);
  DUET_CHECK(in.good(), "cannot open CSV source '{}'", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  DUET_CHECK(!in.bad(), "cannot read CSV source '{}'", path);
  std::string text = buffer.str();
  DUET_CHECK(!text.empty(), "CSV source '{}' is an empty file (expected a header row)", path);
  // Spreadsheet programs save UTF-8 CSVs with a byte order mark; it is not part of the header.
  static const std::string kBom = "\xEF\xBB\xBF";
  if (text.compare(0, kBom.size(), kBom) == 0) {
    text.erase(0, kBom.size());
  }
  const std::vector<Record> records = parse(text, sep);
  DUET_CHECK(!records.empty(), "CSV source '{}' has no header row", path);

  const std::vector<std::string>& header = records[0].fields;
  auto column = [&](const std::string& name, const char* key) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) {
        return i;
      }
    }
    std::string found;
    for (const auto& h : header) {
      found += (found.empty() ? "'" : ", '") + h + "'";
    }
    fail("CSV source '{}' has no column '{}' (data.{}); its header has {} (separator {})", path,
         name, key, found, sep == '\t' ? std::string("tab") : "'" + std::string(1, sep) + "'");
  };
  const size_t img_col = column(options.img_key, "csv_img_key");
  const size_t cap_col = column(options.caption_key, "csv_caption_key");

  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::vector<CsvRow> rows;
  rows.reserve(records.size() - 1);
  for (size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    CsvRow row;
    row.line = rec.line;
    if (rec.fields.size() <= std::max(img_col, cap_col)) {
      row.malformed = true;
    } else {
      const std::filesystem::path image(rec.fields[img_col]);
      row.image_path = image.is_absolute() ? image.string() : (dir / image).string();
      row.caption = rec.fields[cap_col];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace duet::data
