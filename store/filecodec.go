package store

import (
	"encoding/binary"
	"fmt"
)

// The file store's record format, the value of a key in a table's bucket:
//
//	byte 0      format version, 1
//	byte 1      flags: 1 the record expires, 2 it has metadata; no other bit is set
//	8 bytes     if it expires: when, Unix nanoseconds, big-endian, > 0
//	uvarint n   if it has metadata: the length of the metadata, > 0, in the shortest form
//	n bytes     the metadata, a JSON object
//	the rest    the value
//
// A record has exactly one encoding: decodeRecord refuses any other form, so that
// encodeRecord(decodeRecord(b)) == b.
const (
	recordVersion = 1
	flagExpires   = 1 << 0
	flagMetadata  = 1 << 1
	headerSize    = 2
)

// fileRecord is a decoded record; its slices alias the encoded bytes.
type fileRecord struct {
	expiresAt int64 // 0: never
	metadata  []byte
	value     []byte
}

// encodeRecord encodes a record.
func encodeRecord(value, metadata []byte, expiresAt int64) []byte {
	n := headerSize + len(value)
	var flags byte
	if expiresAt != 0 {
		flags |= flagExpires
		n += 8
	}
	if len(metadata) > 0 {
		flags |= flagMetadata
		n += binary.MaxVarintLen64 + len(metadata)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion, flags)
	if expiresAt != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(expiresAt))
	}
	if len(metadata) > 0 {
		b = binary.AppendUvarint(b, uint64(len(metadata)))
		b = append(b, metadata...)
	}
	return append(b, value...)
}

// decodeRecord decodes an encoded record. Its errors wrap ErrCorrupt.
func decodeRecord(b []byte) (fileRecord, error) {
	var r fileRecord
	rest, flags, err := decodeStart(b)
	if err != nil {
		return r, err
	}
	if flags&flagExpires != 0 {
		r.expiresAt = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	}
	if flags&flagMetadata != 0 {
		n, w := binary.Uvarint(rest)
		switch {
		case w <= 0:
			return r, fmt.Errorf("%w: bad metadata length", ErrCorrupt)
		case w != uvarintLen(n):
			return r, fmt.Errorf("%w: metadata length not in its shortest form", ErrCorrupt)
		case n == 0:
			return r, fmt.Errorf("%w: empty metadata marked present", ErrCorrupt)
		case n > uint64(len(rest)-w):
			return r, fmt.Errorf("%w: metadata of %d bytes in a record of %d", ErrCorrupt, n, len(b))
		}
		r.metadata = rest[w : w+int(n)]
		rest = rest[w+int(n):]
	}
	r.value = rest
	return r, nil
}

// decodeExpiry returns when an encoded record expires (0: never), reading only its start.
// Its errors wrap ErrCorrupt.
func decodeExpiry(b []byte) (int64, error) {
	rest, flags, err := decodeStart(b)
	if err != nil || flags&flagExpires == 0 {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(rest)), nil
}

// decodeStart checks the version, flags and expiry of an encoded record and returns the
// bytes after the header.
func decodeStart(b []byte) (rest []byte, flags byte, err error) {
	if len(b) < headerSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, len(b))
	}
	if b[0] != recordVersion {
		return nil, 0, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, b[0])
	}
	flags = b[1]
	if flags&^(flagExpires|flagMetadata) != 0 {
		return nil, 0, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	rest = b[headerSize:]
	if flags&flagExpires != 0 {
		if len(rest) < 8 {
			return nil, 0, fmt.Errorf("%w: truncated expiry", ErrCorrupt)
		}
		if at := int64(binary.BigEndian.Uint64(rest)); at <= 0 {
			return nil, 0, fmt.Errorf("%w: expiry %d is not a time", ErrCorrupt, at)
		}
	}
	return rest, flags, nil
}

// uvarintLen returns the length of the shortest uvarint encoding of n.
func uvarintLen(n uint64) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}
