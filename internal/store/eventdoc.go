package store

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrycd/ferry/internal/bufpool"
)

// On SQLite an event's document is stored compressed with S2 (a faster, Snappy-compatible
// block format): it is most of the bytes an ingest writes, and the one writer copies every
// page of it into the WAL, two system calls a page. Stack traces repeat themselves: a 10 KiB
// sentry-go event compresses to about 1.4 KiB, which fits beside other rows in a page
// instead of filling three. S2 was chosen over zstd's fastest level, which the store used
// first: zstd makes the same event about 950 bytes but takes three to four times as long,
// and that time is spent on every event while the bytes saved change no page count. Stored
// documents start with s2Magic, which no JSON document does; zstd documents (magic number
// 28 b5 2f fd) and plain JSON ones, stored by earlier versions, read as they are.
// PostgreSQL compresses large values itself (TOAST) and keeps the JSON.
var (
	s2Magic = []byte{0xff, 's', '2', 0}
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

// eventDoc is the column value of an event document, JSON as errtrack.AppendEvent wrote it,
// in memory of its own: doc may be reused once it returns.
func (db *DB) eventDoc(doc []byte) any {
	if db.dialect.numbered {
		return string(doc)
	}
	// S2 needs room for an incompressible document, though a compressed one is a
	// seventh of that: compress into a reused buffer and keep what it took.
	buf := docBuffers.Get()
	if need := s2.MaxEncodedLen(len(doc)); cap(buf) < need {
		buf = make([]byte, need)
	}
	block := s2.Encode(buf[:cap(buf)], doc)
	out := append(append(make([]byte, 0, len(s2Magic)+len(block)), s2Magic...), block...)
	docBuffers.Put(buf)
	return out
}

// docBuffers holds the buffers event documents are written and compressed into, so that
// an ingest does not allocate and collect two buffers the size of its event. It keeps none
// over 256 KiB: most documents are a few KiB, and the rare one near the 1 MB cap should not
// stay in memory.
var docBuffers = bufpool.New(16<<10, 256<<10)

// eventJSON is the JSON of a stored event document, compressed or not.
func eventJSON(doc []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(doc, s2Magic):
		block := doc[len(s2Magic):]
		n, err := s2.DecodedLen(block)
		if err == nil && n > maxEventDoc {
			err = fmt.Errorf("%d bytes, over the %d a document may have", n, maxEventDoc)
		}
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		out, err := s2.Decode(make([]byte, n), block)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(doc, zstdMagic):
		out, err := docDecoder.DecodeAll(doc, nil)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	}
	return doc, nil
}
