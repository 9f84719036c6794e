// Package tier is segfs's object-store tier: an S3 client (aws-sdk-go-v2, the standard credential
// chain) that uploads sealed segments with a CRC-32C the store verifies, lists and deletes them, and
// reads them back with ranged GETs through a bounded on-disk cache.
//
// docs/architecture.md shows where this package sits among the others. It knows objects and bytes,
// not partitions: package segments decides what is uploaded, evicted and deleted, and when.
//
// # Objects
//
// A segment is one object, PREFIX/<topic>/<partition>/<20-digit base>.log, holding exactly the
// segment's bytes, so the bucket is itself a readable log. Its user metadata describes it:
//
//	segfs-block    block size B: the unit of ranged reads, caching and verification
//	segfs-crc32c   base64 of the big-endian CRC-32C of each block [k*B, min((k+1)*B, size))
//	segfs-mtime    the segment's seal time, Unix nanoseconds
//
// B is a function of the size alone (BlockSize), at least 1 MiB, with at most 256 blocks, so the
// table stays under S3's 2 KiB metadata limit. The object itself carries the store's full-object
// CRC-32C (x-amz-checksum-crc32c), which the store verifies on upload.
//
// # Reads
//
// A read fetches the blocks it covers with ranged GETs (If-Match the ETag segfs knows), verifies each
// against the table from the same response before any of its bytes is returned, and keeps it in a
// small memory cache and in the disk cache. One GET streams several consecutive blocks, and each is
// handed out as soon as it arrived and verified: the first byte costs one block's transfer, the rest
// follows behind it. A read that continues where the previous one of the object ended keeps up to
// 32 MiB ahead of the reader in flight, in GETs of up to 16 MiB, at most four at a time. The disk cache holds one file per block (data, then its CRC);
// every hit is verified again, so a torn or corrupt file after a crash is dropped, never served.
// It is a segmented LRU: a block enters on probation and is protected only when read again, so one
// long scan cannot push out the blocks that are read over and over. Blocks readahead fetched for a
// scan stay in memory and reach the disk only if a reader comes back to them: a scan read once
// writes nothing to the data disk, where the appends are.
//
// # Goroutines
//
// Every GET runs in a goroutine the Store owns; Close cancels them and waits. A reader waits for its
// block at most Config.Timeout.
package tier
