// Package tier is segfs's object-store tier: an S3 client (aws-sdk-go-v2, standard credential
// chain) that uploads sealed segments with a CRC-32C the store verifies, lists and deletes them, and
// reads them back with ranged GETs through a bounded on-disk cache.
//
// It knows objects and bytes, not partitions: package segments decides what is uploaded, evicted
// and deleted, and when. docs/architecture.md places it among the other packages.
//
// # Objects
//
// A segment is one object, PREFIX/<topic>/<partition>/<20-digit base>.log, holding exactly its
// bytes, so the bucket is itself a readable log. Its user metadata:
//
//	segfs-block    block size B: the unit of ranged reads, caching and verification
//	segfs-crc32c   base64 of the big-endian CRC-32C of each block [k*B, min((k+1)*B, size))
//	segfs-mtime    the segment's seal time, Unix nanoseconds
//
// B depends on the size alone (BlockSize): at least 1 MiB, at most 256 blocks, so the table fits
// S3's 2 KiB metadata limit. The store verifies the full-object CRC-32C on upload.
//
// # Reads
//
// A read fetches blocks with ranged GETs (If-Match the known ETag) and verifies each against the
// same response's table before returning its bytes. One GET streams several blocks, each handed out
// once verified. A sequential reader gets readahead.
//
// Blocks stay in a small memory cache and a disk cache of one file per block (data, then its CRC),
// verified on every hit, so a torn file is dropped, never served. The disk cache is a segmented
// LRU, so one long scan cannot push out blocks read over and over, and readahead blocks reach disk
// only if a reader comes back, so a scan writes nothing next to the appends. An access counts once
// however the kernel splits it. A block a scan has read leaves memory: the kernel keeps it.
//
// # Goroutines
//
// Every GET runs in a goroutine the Store owns; Close cancels them and waits. A reader waits for its
// block at most Config.Timeout.
package tier
