package envelope_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// encoding is one Content-Encoding and a real encoder for it.
type encoding struct {
	name   string
	header string
	encode func(t testing.TB, b []byte) []byte
}

var encodings = []encoding{
	{"identity", "identity", func(_ testing.TB, b []byte) []byte { return b }},
	{"gzip", "gzip", gzipBytes},
	{"x-gzip", "x-gzip", gzipBytes},
	{"upper case", "GZIP", gzipBytes},
	{"deflate zlib", "deflate", zlibBytes},
	{"deflate raw", "deflate", flateBytes},
	{"br", "br", brotliBytes},
	{"zstd", "zstd", zstdBytes},
	{"with identity", "identity, gzip", gzipBytes},
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	return closeWriter(t, w, &buf, b)
}

func zlibBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	return closeWriter(t, w, &buf, b)
}

func flateBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	return closeWriter(t, w, &buf, b)
}

func brotliBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, brotli.BestSpeed)
	return closeWriter(t, w, &buf, b)
}

func zstdBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	return closeWriter(t, w, &buf, b)
}

func closeWriter(t testing.TB, w io.WriteCloser, buf *bytes.Buffer, b []byte) []byte {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bodyRequest(body io.Reader, contentEncoding string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/42/envelope/", body)
	if contentEncoding != "" {
		r.Header.Set("Content-Encoding", contentEncoding)
	}
	return r
}

func TestBodyEncodings(t *testing.T) {
	// Varied enough not to compress to nothing, newline-separated like an envelope.
	var want []byte
	for i := range 2000 {
		want = append(want, strings.Repeat("abcdefghij", i%7)...)
		want = append(want, byte(i), '\n')
	}
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			got, err := envelope.Body(bodyRequest(bytes.NewReader(enc.encode(t, want)), enc.header), envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Body returned %d bytes, want the %d sent", len(got), len(want))
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1024 bytes
	tests := []struct {
		name    string
		enc     encoding
		limits  envelope.Limits
		wantErr error
	}{
		{"identity at the cap", encodings[0], envelope.Limits{MaxCompressed: 1024}, nil},
		{"identity over the compressed cap", encodings[0], envelope.Limits{MaxCompressed: 1023}, envelope.ErrTooLarge},
		{"identity over the decompressed cap", encodings[0], envelope.Limits{MaxDecompressed: 1023}, envelope.ErrTooLarge},
		{"gzip at the decompressed cap", encodings[1], envelope.Limits{MaxDecompressed: 1024}, nil},
		{"gzip over the decompressed cap", encodings[1], envelope.Limits{MaxDecompressed: 1023}, envelope.ErrTooLarge},
		{"gzip over the compressed cap", encodings[1], envelope.Limits{MaxCompressed: 20}, envelope.ErrTooLarge},
		{"br over the decompressed cap", encodings[6], envelope.Limits{MaxDecompressed: 1000}, envelope.ErrTooLarge},
		{"zstd over the decompressed cap", encodings[7], envelope.Limits{MaxDecompressed: 1000}, envelope.ErrTooLarge},
		{"raw deflate over the decompressed cap", encodings[5], envelope.Limits{MaxDecompressed: 1000}, envelope.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := envelope.Body(bodyRequest(bytes.NewReader(tt.enc.encode(t, data)), tt.enc.header), tt.limits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Body error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, data) {
				t.Fatal("Body returned other bytes than were sent")
			}
		})
	}
}

func TestBodyBadInput(t *testing.T) {
	data := bytes.Repeat([]byte(`{"type":"event"}`+"\n"), 500)
	truncate := func(f func(testing.TB, []byte) []byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte {
			b := f(t, data)
			return b[:len(b)/2]
		}
	}
	corrupt := func(f func(testing.TB, []byte) []byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte {
			b := bytes.Clone(f(t, data))
			for i := len(b) / 3; i < len(b)/3+8; i++ {
				b[i] ^= 0x5a
			}
			return b
		}
	}
	tests := []struct {
		name    string
		header  string
		body    func(testing.TB) []byte
		wantErr error
	}{
		{"truncated gzip", "gzip", truncate(gzipBytes), envelope.ErrMalformed},
		{"gzip without its trailer", "gzip", func(t testing.TB) []byte { b := gzipBytes(t, data); return b[:len(b)-8] }, envelope.ErrMalformed},
		{"corrupt gzip", "gzip", corrupt(gzipBytes), envelope.ErrMalformed},
		{"gzip header only", "gzip", func(t testing.TB) []byte { return gzipBytes(t, data)[:10] }, envelope.ErrMalformed},
		{"empty gzip body", "gzip", func(testing.TB) []byte { return nil }, envelope.ErrMalformed},
		{"plain text labelled gzip", "gzip", func(testing.TB) []byte { return data }, envelope.ErrMalformed},
		{"truncated zlib", "deflate", truncate(zlibBytes), envelope.ErrMalformed},
		{"corrupt zlib", "deflate", corrupt(zlibBytes), envelope.ErrMalformed},
		{"truncated raw deflate", "deflate", truncate(flateBytes), envelope.ErrMalformed},
		{"one byte of deflate", "deflate", func(testing.TB) []byte { return []byte{0x78} }, envelope.ErrMalformed},
		{"truncated br", "br", truncate(brotliBytes), envelope.ErrMalformed},
		{"truncated zstd", "zstd", truncate(zstdBytes), envelope.ErrMalformed},
		{"corrupt zstd", "zstd", corrupt(zstdBytes), envelope.ErrMalformed},
		{"unknown encoding", "compress", func(testing.TB) []byte { return data }, envelope.ErrUnsupportedEncoding},
		{"stacked encodings", "gzip, br", func(testing.TB) []byte { return data }, envelope.ErrUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envelope.Body(bodyRequest(bytes.NewReader(tt.body(t)), tt.header), envelope.DefaultLimits())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Body error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("unsupported is malformed", func(t *testing.T) {
		_, err := envelope.Body(bodyRequest(strings.NewReader("x"), "compress"), envelope.DefaultLimits())
		if !errors.Is(err, envelope.ErrMalformed) {
			t.Fatalf("Body error = %v, want ErrMalformed too", err)
		}
	})

	t.Run("http.MaxBytesReader", func(t *testing.T) {
		r := bodyRequest(bytes.NewReader(gzipBytes(t, data)), "gzip")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
		_, err := envelope.Body(r, envelope.DefaultLimits())
		if !errors.Is(err, envelope.ErrTooLarge) {
			t.Fatalf("Body error = %v, want ErrTooLarge", err)
		}
	})

	// A client that goes away is neither too large nor malformed: the caller sees the
	// read error itself.
	readErr := errors.New("connection reset")
	for _, enc := range encodings {
		t.Run("read error "+enc.name, func(t *testing.T) {
			// A valid start of the body, then the connection fails.
			body := io.MultiReader(bytes.NewReader(enc.encode(t, data)[:5]), iotest.ErrReader(readErr))
			_, err := envelope.Body(bodyRequest(body, enc.header), envelope.DefaultLimits())
			if !errors.Is(err, readErr) || errors.Is(err, envelope.ErrMalformed) || errors.Is(err, envelope.ErrTooLarge) {
				t.Fatalf("Body error = %v, want the read error alone", err)
			}
		})
	}
}

// bomb returns a small body that decompresses to at least size bytes of zeros.
type bomb struct {
	name   string
	header string
	make   func(t testing.TB, size int64) []byte
}

// zeros is 10 MiB of zeros: gzipped, about 10 KB.
var zeros = make([]byte, 10<<20)

var bombs = []bomb{
	// Concatenated gzip members are one valid gzip stream: 100 copies of 10 MiB of
	// zeros make a 1 GiB bomb of about 1 MB.
	{"gzip", "gzip", func(t testing.TB, size int64) []byte {
		return bytes.Repeat(gzipBytes(t, zeros), int((size+int64(len(zeros))-1)/int64(len(zeros))))
	}},
	// Likewise concatenated zstd frames.
	{"zstd", "zstd", func(t testing.TB, size int64) []byte {
		return bytes.Repeat(zstdBytes(t, zeros), int((size+int64(len(zeros))-1)/int64(len(zeros))))
	}},
	{"deflate", "deflate", func(t testing.TB, size int64) []byte {
		var buf bytes.Buffer
		w, err := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		return closeWriter(t, w, &buf, make([]byte, size))
	}},
	{"br", "br", func(t testing.TB, size int64) []byte { return brotliBytes(t, make([]byte, size)) }},
}

// heapGrowth returns the bytes f allocates: with every cap in place, a bomb costs a
// small multiple of MaxDecompressed, whatever it decompresses to.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestBodyBomb(t *testing.T) {
	// The growing buffer allocates at most about twice the cap in total; the decoders
	// need their windows and buffers (about 12 MiB for zstd's largest window of 8 MiB,
	// 4 MiB for this brotli stream), whatever the body decompresses to.
	const maxDecompressed = 4 << 20
	const allowance = 2*maxDecompressed + 16<<20
	for _, b := range bombs {
		t.Run(b.name, func(t *testing.T) {
			size := int64(1 << 30)
			if b.name == "deflate" || b.name == "br" {
				size = 32 << 20 // a single stream, as big as the test can cheaply build
			}
			body := b.make(t, size)
			t.Logf("%d-byte body decompressing to %d bytes", len(body), size)
			var err error
			grew := heapGrowth(func() {
				_, err = envelope.Body(bodyRequest(bytes.NewReader(body), b.header), envelope.Limits{MaxDecompressed: maxDecompressed})
			})
			if !errors.Is(err, envelope.ErrTooLarge) {
				t.Fatalf("Body error = %v, want ErrTooLarge", err)
			}
			if grew > allowance {
				t.Errorf("Body allocated %d bytes for a %d-byte cap, want at most %d", grew, maxDecompressed, allowance)
			}
		})
	}

	// The example of the issue at full scale: 10 MiB of zeros gzipped to about 10 KB,
	// repeated past the default 100 MiB cap.
	t.Run("default limits", func(t *testing.T) {
		if testing.Short() {
			t.Skip("decompresses 100 MiB")
		}
		body := bytes.Repeat(gzipBytes(t, zeros), 15)
		var err error
		grew := heapGrowth(func() {
			_, err = envelope.Body(bodyRequest(bytes.NewReader(body), "gzip"), envelope.DefaultLimits())
		})
		if !errors.Is(err, envelope.ErrTooLarge) {
			t.Fatalf("Body error = %v, want ErrTooLarge", err)
		}
		if max := uint64(5 * envelope.DefaultMaxDecompressed / 2); grew > max {
			t.Errorf("Body allocated %d bytes, want at most %d", grew, max)
		}
	})
}
