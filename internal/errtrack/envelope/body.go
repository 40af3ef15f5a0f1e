package envelope

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/ferrycd/ferry/internal/bufpool"
)

// maxZstdWindow is the largest zstd window accepted: RFC 9659 lets HTTP decoders refuse
// windows over 8 MiB, so no conforming sender uses more, and a frame that claims more
// cannot make the decoder allocate it.
const maxZstdWindow = 8 << 20

// firstReadSize is the buffer Body starts with, enough for most events; it doubles as
// the body grows.
const firstReadSize = 16 << 10

// bodies holds request buffers for reuse (see Recycle). It keeps none over 256 KiB: most
// bodies are a few KiB, and buffers at the caps would hold their memory for nothing.
var bodies = bufpool.New(firstReadSize, 256<<10)

// Recycle hands a body Body returned back for another request to read into. Call it only
// when nothing refers to body or to any part of it any more, or not at all.
func Recycle(body []byte) { bodies.Put(body) }

// gzipReaders holds gzip.Readers for reuse.
var gzipReaders sync.Pool

// errWireCap stops a decompressor when the compressed body passes its cap.
var errWireCap = errors.New("compressed body over its cap")

// Body reads the request body and undoes its Content-Encoding: gzip (x-gzip), deflate
// (zlib-wrapped, or raw as some SDKs send it; Sentry accepts both), br, zstd or identity.
//
// It never trusts a length the client gives: the body is streamed through the caps of
// limits and the buffer grows as bytes arrive, to at most MaxDecompressed+1 bytes, so a
// decompression bomb costs no more memory than an honest body at the cap. Exceeding
// MaxCompressed or MaxDecompressed gives ErrTooLarge; corrupt or truncated compressed data
// gives ErrMalformed; an unknown encoding ErrUnsupportedEncoding. An error reading the
// body itself (the client went away) is returned wrapped as it is, except that an
// http.MaxBytesReader cap also gives ErrTooLarge. Body does not close r.Body. The body may
// be read into a buffer an earlier request gave back with Recycle.
func Body(r *http.Request, limits Limits) ([]byte, error) {
	l := limits.withDefaults()
	enc, err := contentEncoding(r.Header)
	if err != nil {
		return nil, err
	}
	if r.Body == nil {
		return []byte{}, nil
	}
	wire := &wireReader{r: r.Body, left: l.MaxCompressed}

	if enc == "identity" {
		out, over, err := readCapped(wire, min(l.MaxCompressed, l.MaxDecompressed), bodies.Get())
		switch {
		case wire.over || over:
			return nil, fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, min(l.MaxCompressed, l.MaxDecompressed))
		case err != nil:
			return nil, wire.readErr(err)
		}
		return out, nil
	}

	dec, closeDec, err := decoder(enc, wire)
	if err != nil {
		return nil, wire.decodeErr(enc, l.MaxCompressed, err)
	}
	defer closeDec()
	out, over, err := readCapped(dec, l.MaxDecompressed, bodies.Get())
	switch {
	case wire.over:
		return nil, fmt.Errorf("%w: %s request body over %d bytes", ErrTooLarge, enc, l.MaxCompressed)
	case over:
		return nil, fmt.Errorf("%w: %s request body decompresses to over %d bytes", ErrTooLarge, enc, l.MaxDecompressed)
	case err != nil:
		return nil, wire.decodeErr(enc, l.MaxCompressed, err)
	}
	return out, nil
}

// contentEncoding returns the one coding the body is in, lower case. Stacked codings
// ("gzip, br") are refused: no SDK sends them, and each layer is more work for an attacker
// to hand us.
func contentEncoding(h http.Header) (string, error) {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return "identity", nil
	case len(codings) > 1:
		return "", fmt.Errorf("%w: %q (one coding at a time)", ErrUnsupportedEncoding, strings.Join(codings, ", "))
	}
	switch c := codings[0]; c {
	case "gzip", "x-gzip":
		return "gzip", nil
	case "deflate", "br", "zstd":
		return c, nil
	default:
		return "", fmt.Errorf("%w: %q (want gzip, deflate, br, zstd or identity)", ErrUnsupportedEncoding, c)
	}
}

// decoder returns a reader that undoes enc, and a function that releases it.
func decoder(enc string, wire io.Reader) (io.Reader, func(), error) {
	noop := func() {}
	switch enc {
	case "gzip":
		// The SDKs that compress mostly gzip; a gzip.Reader is 40 KiB of tables, so
		// they are reused.
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(wire)
		} else {
			err = zr.Reset(wire)
		}
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { gzipReaders.Put(zr) }, nil
	case "deflate":
		// HTTP's "deflate" is zlib (RFC 1950), but enough clients send raw deflate
		// (RFC 1951) that Sentry takes both. A zlib stream starts with a two-byte
		// header that no raw stream is likely to imitate: CM=8, a window of at most
		// 32 KiB, and a check that makes the pair a multiple of 31.
		br := bufio.NewReader(wire)
		head, err := br.Peek(2)
		if err != nil && len(head) < 2 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if head[0]&0x0f == 8 && head[0]>>4 <= 7 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, err
			}
			return zr, noop, nil
		}
		fr := flate.NewReader(br)
		return fr, func() { fr.Close() }, nil
	case "br":
		return brotli.NewReader(wire), noop, nil
	case "zstd":
		// One goroutine-free decoder per body, its window and memory capped.
		zr, err := zstd.NewReader(wire,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
		)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%w: %q", ErrUnsupportedEncoding, enc)
}

// wireReader counts the bytes read from the request body and stops past left, remembering
// whether it did and whether the body itself failed, so that Body can tell a cap or a
// network error from corrupt compressed data.
type wireReader struct {
	r    io.Reader
	left int64 // bytes still allowed
	over bool
	err  error // the body's own read error, other than io.EOF
}

func (w *wireReader) Read(p []byte) (int, error) {
	if w.over {
		return 0, errWireCap
	}
	// Ask for one byte past the cap, to see whether the body goes on.
	if int64(len(p)) > w.left+1 {
		p = p[:w.left+1]
	}
	n, err := w.r.Read(p)
	w.left -= int64(n)
	if w.left < 0 {
		w.over = true
		return n, errWireCap
	}
	if err != nil && !errors.Is(err, io.EOF) {
		w.err = err
	}
	return n, err
}

// readErr classifies an error reading an identity body.
func (w *wireReader) readErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, mbe.Limit)
	}
	return fmt.Errorf("read request body: %w", err)
}

// decodeErr classifies an error from a decompressor: the body's own failure if there was
// one, else the compressed data is bad.
func (w *wireReader) decodeErr(enc string, maxCompressed int64, err error) error {
	switch {
	case w.over:
		return fmt.Errorf("%w: %s request body over %d bytes", ErrTooLarge, enc, maxCompressed)
	case w.err != nil:
		return w.readErr(w.err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s body is truncated", ErrMalformed, enc)
	}
	return fmt.Errorf("%w: %s body is corrupt: %w", ErrMalformed, enc, err)
}

// readCapped reads r to its end into buf, a buffer to reuse (nil: a new one of
// firstReadSize), which doubles as needed but never past max+1 bytes; a reused buffer
// larger than that reads at most its own size. over reports that r had more than max bytes.
func readCapped(r io.Reader, max int64, buf []byte) (out []byte, over bool, err error) {
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(max+1, firstReadSize))
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, true, nil
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), max+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
