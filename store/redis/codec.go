package redis

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/seed-b3892490/micro/store"
)

// Key layout: the Redis key of a record is
//
//	<database>:<table>:<key>
//
// with '%' and ':' in the database and table names written as %25 and %3A, so that
// neither name holds a ':' and the first two ':' of a Redis key always end the database
// and the table: two different (database, table, key) triples never give the same Redis
// key, and the keys of one table all start with a prefix that no key of another table
// starts with. The record's key follows unchanged (Redis keys are binary-safe).

// escapeName returns a database or table name with '%' and ':' percent-encoded.
func escapeName(s string) string {
	if !strings.ContainsAny(s, "%:") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteString("%25")
		case ':':
			b.WriteString("%3A")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeName reverses escapeName; it reports false for a string escapeName cannot
// have made.
func unescapeName(s string) (string, bool) {
	if strings.IndexByte(s, ':') >= 0 {
		return "", false
	}
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "%25"):
			b.WriteByte('%')
		case strings.HasPrefix(s[i:], "%3A"):
			b.WriteByte(':')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// tablePrefix returns the prefix of the Redis keys of a table's records.
func tablePrefix(database, table string) string {
	return escapeName(database) + ":" + escapeName(table) + ":"
}

// splitKey returns the database, table and key of a Redis key made by tablePrefix and a
// key, and false for a Redis key that is not one.
func splitKey(rkey string) (database, table, key string, ok bool) {
	db, rest, ok1 := strings.Cut(rkey, ":")
	tb, key, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return "", "", "", false
	}
	if database, ok1 = unescapeName(db); !ok1 {
		return "", "", "", false
	}
	if table, ok2 = unescapeName(tb); !ok2 {
		return "", "", "", false
	}
	return database, table, key, true
}

// globEscape returns a SCAN MATCH pattern that matches s literally: each of Redis's glob
// metacharacters (* ? [ ] \) is preceded by a backslash. (^ and - mean something only
// within brackets, and no bracket is left unescaped.)
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Value layout: a record is one Redis string, its value and metadata together:
//
//	byte 0        format version, 1
//	uvarint       n, the length of the metadata
//	n bytes       the metadata, a JSON object (n = 0: none)
//	the rest      the value, unchanged
//
// The expiry is not in it: it is the Redis key's own (PX), and a record's remaining
// Expiry is read with PTTL.

// formatV1 is the first byte of a record written by this package.
const formatV1 = 1

// encodeRecord returns the stored form of value and metadata (a JSON object or nil).
func encodeRecord(value, metadata []byte) []byte {
	var n [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(n[:], uint64(len(metadata)))
	b := make([]byte, 0, 1+l+len(metadata)+len(value))
	b = append(b, formatV1)
	b = append(b, n[:l]...)
	b = append(b, metadata...)
	return append(b, value...)
}

// errFormat is wrapped by decodeRecord's errors.
var errFormat = errors.New("not a record of store/redis")

// decodeRecord returns the value and metadata of a stored record; the value is a slice
// of b. A b that encodeRecord did not make gives an error wrapping store.ErrCorrupt.
func decodeRecord(b []byte) (value []byte, metadata map[string]interface{}, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("%w: %w: empty", store.ErrCorrupt, errFormat)
	}
	if b[0] != formatV1 {
		return nil, nil, fmt.Errorf("%w: %w: format byte %#x, want %#x", store.ErrCorrupt, errFormat, b[0], formatV1)
	}
	n, l := binary.Uvarint(b[1:])
	if l <= 0 {
		return nil, nil, fmt.Errorf("%w: %w: bad metadata length", store.ErrCorrupt, errFormat)
	}
	rest := b[1+l:]
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: %w: metadata of %d bytes in %d", store.ErrCorrupt, errFormat, n, len(rest))
	}
	md, err := decodeMetadata(rest[:n])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: metadata: %w", store.ErrCorrupt, err)
	}
	return rest[n:], md, nil
}

// encodeMetadata returns metadata as a JSON object, or nil when it is empty.
func encodeMetadata(key string, md map[string]interface{}) ([]byte, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("store/redis: the metadata of %q is not JSON-encodable: %w", key, err)
	}
	return b, nil
}

// decodeMetadata decodes a JSON object; empty input gives an empty map.
func decodeMetadata(b []byte) (map[string]interface{}, error) {
	md := map[string]interface{}{}
	if len(b) == 0 {
		return md, nil
	}
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	return md, nil
}
