package message

import "testing"

func BenchmarkParseRecord(b *testing.B) {
	m := sample()
	rec := AppendRecord(nil, &m)
	b.Run("offsets", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("field-by-field", func(b *testing.B) {
		for b.Loop() {
			if _, ok := parseRecordFieldByField(rec); !ok {
				b.Fatal("rejected")
			}
		}
	})
}
