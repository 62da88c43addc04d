package natskv

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/seed-b3892490/micro/store"
)

// How names, keys and records are laid out in JetStream (see the package documentation):
//
//	bucket   one per database: the database name escaped with '-' (bucketName)
//	subject  $KV.<bucket>.<table token>.<one token per key byte>.=
//	entry    [1] [uvarint: length of the metadata JSON] [metadata JSON] [value]
//	header   Micro-Expires: <Unix nanoseconds>, on records that expire

const (
	// MaxKeySize is the longest key the store takes, in bytes. NATS carries a record's
	// subject, of up to three characters per key byte, in protocol lines of at most 4 KiB.
	MaxKeySize = 1024
	// RecordOverhead bounds the bytes a record takes on the wire besides its value and
	// its metadata's JSON. A record fits when the value, the metadata's JSON and
	// RecordOverhead together are at most the server's max_payload (1 MiB unless the
	// server's configuration raises it).
	RecordOverhead = 64

	// maxNameLen is the longest encoded bucket name or table token; longer ones are
	// shortened and completed by a hash of the name.
	maxNameLen = 64
	// hashedPrefixLen is how much of a long encoded name a shortened one keeps.
	hashedPrefixLen = 40

	// entryVersion is the first byte of every entry the store writes.
	entryVersion = 1
	// expiresHeader holds when a record expires, in Unix nanoseconds.
	expiresHeader = "Micro-Expires"
	// kvOperationHeader marks KV delete and purge markers written by other NATS clients.
	kvOperationHeader = "KV-Operation"
	// endToken ends every key's subject: it lets a prefix filter "<prefix tokens>.>"
	// match the key equal to the prefix too.
	endToken = "="
)

// errCorrupt is wrapped by decoding errors; store.ErrCorrupt matches it.
var errCorrupt = store.ErrCorrupt

const hexDigits = "0123456789ABCDEF"

// escapeName encodes name with the bytes literal allows kept and every other byte, esc
// among them, written as esc and two upper-case hex digits. Encodings longer than
// maxNameLen are cut to hashedPrefixLen characters followed by esc twice and a hash of
// the name: a short encoding never holds esc twice in a row, so the two kinds cannot
// meet, and two names share an encoding only if their SHA-256 hashes share 88 bits.
func escapeName(name string, esc byte, literal func(byte) bool) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != esc && literal(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(esc)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	enc := b.String()
	if len(enc) <= maxNameLen {
		return enc
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	return enc[:hashedPrefixLen] + string([]byte{esc, esc}) + h[:maxNameLen-hashedPrefixLen-2]
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// bucketName returns the name of database's bucket: a valid bucket name
// ([A-Za-z0-9_-], at most 64 characters) that no other database has.
func bucketName(database string) string {
	return escapeName(database, '-', func(c byte) bool { return isAlnum(c) || c == '_' })
}

// tableToken returns the subject token of table: [A-Za-z0-9_/=-], at most 64
// characters, unique to the table.
func tableToken(table string) string {
	return escapeName(table, '=', func(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '/' })
}

// keyLiteral reports whether byte c of a key is its own token; other bytes are written as
// two upper-case hex digits.
func keyLiteral(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '/' }

// appendKeyTokens appends the tokens of key, dot-separated, to b: one per byte, so that
// the tokens of a prefix of a key are the first tokens of the key.
func appendKeyTokens(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if i > 0 {
			b = append(b, '.')
		}
		c := key[i]
		if keyLiteral(c) {
			b = append(b, c)
		} else {
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}

// tablePrefix returns the subject prefix of the keys of table in bucket, ending in '.'.
func tablePrefix(bucket, table string) string {
	return "$KV." + bucket + "." + tableToken(table) + "."
}

// keySubject returns the subject of key under a table prefix.
func keySubject(prefix, key string) string {
	b := make([]byte, 0, len(prefix)+3*len(key)+2)
	b = append(b, prefix...)
	b = appendKeyTokens(b, key)
	b = append(b, '.')
	b = append(b, endToken...)
	return string(b)
}

// prefixFilter returns the subject filter of the keys starting with keyPrefix under a
// table prefix.
func prefixFilter(prefix, keyPrefix string) string {
	if keyPrefix == "" {
		return prefix + ">"
	}
	b := make([]byte, 0, len(prefix)+3*len(keyPrefix)+2)
	b = append(b, prefix...)
	b = appendKeyTokens(b, keyPrefix)
	b = append(b, ".>"...)
	return string(b)
}

// decodeKey returns the key of a subject under a table prefix. Only subjects keySubject
// makes decode: one token per byte (a character keyLiteral allows, or two upper-case hex
// digits of a byte it does not), then the end token.
func decodeKey(prefix, subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return "", fmt.Errorf("%w: subject %q is not under %q", errCorrupt, subject, prefix)
	}
	body, ok := strings.CutSuffix(rest, endToken)
	if !ok || body == "" {
		return "", fmt.Errorf("%w: subject %q does not end in a key's end token", errCorrupt, subject)
	}
	body, ok = strings.CutSuffix(body, ".")
	if !ok || body == "" {
		return "", fmt.Errorf("%w: subject %q holds an empty key", errCorrupt, subject)
	}
	key := make([]byte, 0, len(body)/2+1)
	for tok := range strings.SplitSeq(body, ".") {
		switch len(tok) {
		case 1:
			if !keyLiteral(tok[0]) {
				return "", fmt.Errorf("%w: subject %q: token %q is not a key byte", errCorrupt, subject, tok)
			}
			key = append(key, tok[0])
		case 2:
			hi, lo := strings.IndexByte(hexDigits, tok[0]), strings.IndexByte(hexDigits, tok[1])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("%w: subject %q: token %q is not two hex digits", errCorrupt, subject, tok)
			}
			c := byte(hi<<4 | lo)
			if keyLiteral(c) {
				return "", fmt.Errorf("%w: subject %q: token %q escapes a byte that is its own token", errCorrupt, subject, tok)
			}
			key = append(key, c)
		default:
			return "", fmt.Errorf("%w: subject %q: token %q is not a key byte", errCorrupt, subject, tok)
		}
	}
	return string(key), nil
}

// encodeEntry returns the entry of a record: the version, the metadata's JSON (md, nil
// for none) with its length, and the value.
func encodeEntry(value, md []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(md)+len(value))
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(len(md)))
	b = append(b, md...)
	return append(b, value...)
}

// decodeEntry returns the value and metadata of an entry written by encodeEntry. The
// value is a new slice; metadata is never nil. Errors wrap store.ErrCorrupt.
func decodeEntry(data []byte) (value []byte, md map[string]interface{}, err error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty entry", errCorrupt)
	}
	if data[0] != entryVersion {
		return nil, nil, fmt.Errorf("%w: entry version %d, want %d", errCorrupt, data[0], entryVersion)
	}
	n, w := binary.Uvarint(data[1:])
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: bad metadata length", errCorrupt)
	}
	rest := data[1+w:]
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: metadata of %d bytes in an entry of %d", errCorrupt, n, len(data))
	}
	md = map[string]interface{}{}
	if n > 0 {
		if err := json.Unmarshal(rest[:n], &md); err != nil {
			return nil, nil, fmt.Errorf("%w: metadata: %v", errCorrupt, err)
		}
		if md == nil {
			return nil, nil, fmt.Errorf("%w: metadata is null, not an object", errCorrupt)
		}
	}
	value = make([]byte, len(rest)-int(n))
	copy(value, rest[n:])
	return value, md, nil
}

// encodeMetadata returns md as a JSON object, or nil when it is empty.
func encodeMetadata(md map[string]interface{}) ([]byte, error) {
	if len(md) == 0 {
		return nil, nil
	}
	return json.Marshal(md)
}

// parseExpires returns the expiry of a record from its Micro-Expires header value: Unix
// nanoseconds, 0 when the header is absent.
func parseExpires(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	at, err := strconv.ParseInt(h, 10, 64)
	if err != nil || at <= 0 {
		return 0, fmt.Errorf("%w: %s header %q is not a positive integer", errCorrupt, expiresHeader, h)
	}
	return at, nil
}

// errEmptyKey is returned by Write for a record without a key.
var errEmptyKey = errors.New("natskv: a record's key must not be empty")
