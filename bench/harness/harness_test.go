package harness

import "testing"

func TestBucketRoundTrip(t *testing.T) {
	for _, d := range []int64{0, 1, 127, 128, 129, 1000, 12345, 1e6, 3e9, 1 << 40} {
		b := bucket(d)
		if b < 0 || b >= nBuckets {
			t.Fatalf("bucket(%d) = %d out of range", d, b)
		}
		v := bucketValue(b)
		if diff := float64(v-d) / float64(d+1); diff > 0.02 || diff < -0.02 {
			t.Fatalf("bucketValue(bucket(%d)) = %d", d, v)
		}
	}
	for d := int64(100); d < 100000; d += 37 {
		if bucket(d) > bucket(d+1) {
			t.Fatalf("not monotone at %d", d)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 1000; i++ {
		h[bucket(i*1000)]++
	}
	if p := quantile(&h, 1000, 0.5); p < 490000 || p > 512000 {
		t.Fatalf("p50 = %d", p)
	}
	if p := quantile(&h, 1000, 0.999); p < 990000 || p > 1016000 {
		t.Fatalf("p99.9 = %d", p)
	}
}
