package rabbitmq

import (
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/seed-b3892490/micro/broker"
)

// Limits of the AMQP encoding, checked before anything is sent: the server closes the
// whole connection on a frame it cannot parse, so a bad message must fail alone.
const (
	// maxShortString is the longest AMQP short string: header names, topics (routing
	// keys), queue and exchange names.
	maxShortString = 255
	// propertiesReserve is what the header frame keeps for the other message properties
	// and the frame's own fields, each short string property being at most 256 bytes.
	propertiesReserve = 12 * 256
)

// encodeHeaders returns h as an AMQP table of strings. It fails when a header name is
// longer than an AMQP short string, or when the headers would not fit in one frame of
// frameMax bytes (the server's limit for the header frame that carries them).
func encodeHeaders(h map[string]string, frameMax int) (amqp.Table, error) {
	if len(h) == 0 {
		return nil, nil
	}
	t := make(amqp.Table, len(h))
	size := 4 // the table's length prefix
	for k, v := range h {
		if len(k) > maxShortString {
			return nil, fmt.Errorf("%w: header name of %d bytes (at most %d): %.32q…", ErrMessageTooLarge, len(k), maxShortString, k)
		}
		size += 1 + len(k) + 1 + 4 + len(v) // name, type octet, long string
		t[k] = v
	}
	if limit := frameMax - propertiesReserve; frameMax > 0 && size > limit {
		return nil, fmt.Errorf("%w: %d bytes of headers (at most %d with the server's frame size of %d)", ErrMessageTooLarge, size, limit, frameMax)
	}
	return t, nil
}

// decodeMessage returns the broker.Message a delivery carries. String header values are
// kept as they are; values of the other AMQP types, which a publisher other than this
// package may send, become strings: byte arrays as their bytes, numbers in decimal, times
// in RFC 3339, decimals as digits with a point, nested tables and arrays as Go's %v
// rendering. The AMQP content-type property becomes the "Content-Type" header when the
// message has none. The body is the delivery's own, not copied.
func decodeMessage(d *amqp.Delivery) broker.Message {
	m := broker.Message{Body: d.Body}
	if len(d.Headers) > 0 || d.ContentType != "" {
		m.Header = make(map[string]string, len(d.Headers)+1)
	}
	for k, v := range d.Headers {
		m.Header[k] = headerString(v)
	}
	if d.ContentType != "" {
		if _, ok := m.Header["Content-Type"]; !ok {
			m.Header["Content-Type"] = d.ContentType
		}
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	return m
}

// headerString renders one AMQP table value as a header string.
func headerString(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case int8:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case uint8:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return decimalString(x)
	default:
		return fmt.Sprintf("%v", x)
	}
}

// decimalString renders an AMQP decimal: Value × 10^-Scale.
func decimalString(d amqp.Decimal) string {
	neg := d.Value < 0
	u := uint64(d.Value)
	if neg {
		u = uint64(-int64(d.Value))
	}
	digits := strconv.FormatUint(u, 10)
	if s := int(d.Scale); s > 0 {
		for len(digits) <= s {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-s] + "." + digits[len(digits)-s:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits
}

// tag renders a delivery tag and consumer for error messages.
func tag(d *amqp.Delivery) string {
	return d.ConsumerTag + "/" + strconv.FormatUint(d.DeliveryTag, 10)
}
