package store

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// On SQLite an event's document is stored compressed with zstd, at its fastest level: it
// is most of the bytes an ingest writes, and the one writer copies every page of it into
// the WAL, two system calls a page. Stack traces repeat themselves: the 16 KiB event of
// BenchmarkIngestEvent compresses to 1.2 KiB, which fits beside other rows in a page
// instead of filling four, and the writer spends about a sixth less time per event.
// PostgreSQL compresses large values itself (TOAST) and keeps the JSON. Documents stored
// as JSON before, which start with '{', read as they are.
var (
	docEncoder = mustZstd(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest)))
	// The decoder's memory cap bounds what a damaged document can make it allocate; a
	// stored event is at most 1 MB of JSON.
	docDecoder = mustZstd(zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxEventDoc)))
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxEventDoc bounds a stored event document once decompressed, well above the 1 MB an
// event may have when it arrives.
const maxEventDoc = 8 << 20

func mustZstd[T any](v T, err error) T {
	if err != nil {
		panic(err) // only for options that are wrong, fixed in the source
	}
	return v
}

// eventDoc is the column value of an event document, JSON as MarshalEvent wrote it.
func (db *DB) eventDoc(doc []byte) any {
	if db.dialect.numbered {
		return string(doc)
	}
	return docEncoder.EncodeAll(doc, make([]byte, 0, len(doc)/3))
}

// eventJSON is the JSON of a stored event document, compressed or not.
func eventJSON(doc []byte) ([]byte, error) {
	if !bytes.HasPrefix(doc, zstdMagic) {
		return doc, nil
	}
	out, err := docDecoder.DecodeAll(doc, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}
