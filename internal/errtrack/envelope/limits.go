package envelope

// Default limits. They follow Sentry's own ingestion limits (Relay's max_api_payload_size,
// max_envelope_size and max_event_size), which the SDKs are written against: an SDK that
// works with sentry.io stays under them.
const (
	DefaultMaxCompressed   = 20 << 20 // 20 MiB on the wire
	DefaultMaxDecompressed = 100 << 20
	DefaultMaxEvent        = 1 << 20
	DefaultMaxItems        = 1000
	DefaultMaxDepth        = 64
)

// maxByteLimit bounds the byte limits, so that arithmetic on them cannot overflow.
const maxByteLimit = 1 << 40

// Limits caps what one request may make the server hold. A zero or negative field takes
// its default, so Limits{} is the same as DefaultLimits(); a byte limit over 1 TiB is
// taken as 1 TiB.
type Limits struct {
	// MaxCompressed caps the request body as it arrives, before Content-Encoding is undone.
	MaxCompressed int64
	// MaxDecompressed caps the body after Content-Encoding is undone: the envelope. An
	// identity body is held to the smaller of the two caps.
	MaxDecompressed int64
	// MaxEvent caps the payload of one event or transaction item, and the event of the
	// legacy store endpoint after it is decoded.
	MaxEvent int64
	// MaxItems caps the number of items in one envelope. Items are small structs, but a
	// 100 MiB body of empty items would still be millions of them.
	MaxItems int
	// MaxDepth caps the nesting of objects and arrays in an event payload.
	MaxDepth int
}

// DefaultLimits returns the limits Sentry applies: 20 MiB compressed, 100 MiB
// decompressed, 1 MiB per event, 1000 items, JSON nested at most 64 levels deep.
func DefaultLimits() Limits {
	return Limits{
		MaxCompressed:   DefaultMaxCompressed,
		MaxDecompressed: DefaultMaxDecompressed,
		MaxEvent:        DefaultMaxEvent,
		MaxItems:        DefaultMaxItems,
		MaxDepth:        DefaultMaxDepth,
	}
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = d.MaxCompressed
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = d.MaxDecompressed
	}
	if l.MaxEvent <= 0 {
		l.MaxEvent = d.MaxEvent
	}
	l.MaxCompressed = min(l.MaxCompressed, maxByteLimit)
	l.MaxDecompressed = min(l.MaxDecompressed, maxByteLimit)
	l.MaxEvent = min(l.MaxEvent, maxByteLimit)
	if l.MaxItems <= 0 {
		l.MaxItems = d.MaxItems
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}
