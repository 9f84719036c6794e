package tier

import (
	"context"
	"sort"
	"time"
)

// Below: what package segments calls through its Remote interface.

// Upload stores a sealed segment file and returns its ETag once the store verified it.
func (s *Store) Upload(ctx context.Context, topic string, partition int, base, size int64, sealed time.Time, path string) (string, error) {
	o, err := s.uploadObject(ctx, Object{Topic: topic, Partition: partition, Base: base, Size: size, ModTime: sealed}, path)
	return o.ETag, err
}

// ReadAt reads a stored segment; see readObject.
func (s *Store) ReadAt(topic string, partition int, base, size int64, etag string, b []byte, off int64) (int, error) {
	return s.readObject(Object{Topic: topic, Partition: partition, Base: base, Size: size, ETag: etag}, b, off)
}

// List calls each for every stored segment of the partition, in base order.
func (s *Store) List(ctx context.Context, topic string, partition int, each func(base, size int64, etag string, modTime time.Time)) error {
	objs, err := s.listObjects(ctx, topic, partition)
	if err != nil {
		return err
	}
	for _, o := range objs {
		each(o.Base, o.Size, o.ETag, o.ModTime)
	}
	return nil
}

// Partitions calls each for every partition the store holds segments of, sorted.
func (s *Store) Partitions(ctx context.Context, each func(topic string, partition int)) error {
	m, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		ids := m[t]
		sort.Ints(ids)
		for _, id := range ids {
			each(t, id)
		}
	}
	return nil
}
