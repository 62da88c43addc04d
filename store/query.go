package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// errEmptyKey is returned by Write for a record without a key.
var errEmptyKey = errors.New("store: a record's key must not be empty")

// query is what a Read with a pattern or a List selects: keys with the prefix and the
// suffix, in key order, after skipping offset matches, at most limit of them (0: all).
type query struct {
	prefix, suffix string
	offset, limit  uint
}

// readQuery returns the query of a Read of key with a pattern.
func readQuery(key string, o ReadOptions) query {
	q := query{offset: o.Offset, limit: o.Limit}
	if o.Prefix {
		q.prefix = key
	}
	if o.Suffix {
		q.suffix = key
	}
	return q
}

// listQuery returns the query of a List.
func listQuery(o ListOptions) query {
	return query{prefix: o.Prefix, suffix: o.Suffix, offset: o.Offset, limit: o.Limit}
}

// match reports whether key passes the query's filters.
func (q query) match(key string) bool {
	return strings.HasPrefix(key, q.prefix) && strings.HasSuffix(key, q.suffix)
}

// pager counts the matches of a query in key order: take says whether the next match
// belongs to the result, and full whether the result is complete.
type pager struct {
	q       query
	skipped uint
	taken   uint
}

// take is called for each match in order and reports whether it is part of the result.
func (p *pager) take() bool {
	if p.skipped < p.q.offset {
		p.skipped++
		return false
	}
	p.taken++
	return true
}

// full reports whether the limit has been reached.
func (p *pager) full() bool { return p.q.limit > 0 && p.taken >= p.q.limit }

// expiryOf returns when a record written at now with o expires, in Unix nanoseconds (0:
// never), and whether it has already expired: WriteTTL first, then WriteExpiry, then the
// record's own Expiry. TTLs that are not positive count as none.
func expiryOf(r *Record, o WriteOptions, now time.Time) (at int64, expired bool) {
	switch {
	case o.TTL > 0:
		return now.Add(o.TTL).UnixNano(), false
	case !o.Expiry.IsZero():
		if !o.Expiry.After(now) {
			return 0, true
		}
		return o.Expiry.UnixNano(), false
	case r.Expiry > 0:
		return now.Add(r.Expiry).UnixNano(), false
	}
	return 0, false
}

// remaining returns the TTL left at now of a record expiring at at (0: never).
func remaining(at int64, now time.Time) time.Duration {
	if at == 0 {
		return 0
	}
	d := time.Duration(at - now.UnixNano())
	if d <= 0 {
		// not reached: expired records are not returned; keep a positive TTL anyway
		return time.Nanosecond
	}
	return d
}

// isExpired reports whether a record expiring at at (0: never) has expired at now.
func isExpired(at int64, now time.Time) bool { return at != 0 && at <= now.UnixNano() }

// CheckRecord returns the error a Write must refuse r with, or nil: r is nil, its key is
// empty, or it is a NewRecord whose value could not be encoded. Every backend's Write
// calls it first.
func CheckRecord(r *Record) error { return checkRecord(r) }

// checkRecord returns the error of a record Write refuses.
func checkRecord(r *Record) error {
	switch {
	case r == nil:
		return errors.New("store: Write of a nil record")
	case r.encodeErr != nil:
		return r.encodeErr
	case r.Key == "":
		return errEmptyKey
	}
	return nil
}

// encodeMetadata returns metadata as a JSON object, or nil when it is empty.
func encodeMetadata(key string, md map[string]interface{}) ([]byte, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("store: the metadata of %q is not JSON-encodable: %w", key, err)
	}
	return b, nil
}

// decodeMetadata decodes a JSON object written by encodeMetadata; nil gives an empty map.
func decodeMetadata(b []byte) (map[string]interface{}, error) {
	md := map[string]interface{}{}
	if len(b) == 0 {
		return md, nil
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	if md == nil { // the JSON was null
		return nil, errors.New("metadata is null, not an object")
	}
	return md, nil
}

// scopeOf returns the database and table of a call: the ones it names, else the store's.
func scopeOf(o Options, database, table string) (string, string) {
	if database == "" {
		database = o.Database
	}
	if table == "" {
		table = o.Table
	}
	return database, table
}
