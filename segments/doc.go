// Package segments is the storage engine of segfs: durable, append-only partition logs made of
// segment files, written through package directio. docs/architecture.md shows where it sits.
//
// # On-disk format
//
//	DATA/.lock                           flock(LOCK_EX|LOCK_NB) of the process that has DATA open
//	DATA/<topic>/<partition>/<base>.log  a segment; <base> is its first partition offset, 20 digits
//	DATA/<topic>/<partition>/.commit     the padded-block record (below)
//	DATA/[<topic>/].deleted-<name>-<n>   tombstone of an interrupted delete; Open removes it
//
// A partition's bytes are its segments concatenated in base order, without framing. Every segment
// but the last (the active one) is sealed: exactly its logical size, fsynced, never written again.
// In deferred mode the one before the active segment may still be sealing in the background, and
// nothing is written to the active segment until that seal is done. A gap between segments is a
// purged range; an overlap fails Open.
//
// .commit has two 512-byte slots, written alternately (slot seq%2), each with pwrite and fdatasync.
// A record, little endian: magic "SGC1" u32, block u32, seq u64, base i64, length i64, blockCRC u32
// (CRC-32C of the zero-padded block [alignDown(length), alignUp(length))), crc u32 (CRC-32C of the
// 36 bytes before it). The valid slot with the higher seq is current, the other one previous.
//
// # Writing
//
// An append is atomic, in call order, and never spans segments: if it does not fit in a non-empty
// active segment, a rotation seals that segment first. Inline, Append writes every full block before
// it returns and a rotation seals before it creates the next segment. Deferred, Append copies into
// file-aligned pool chunks (at most MaxDirty per partition and MaxDirtyTotal in all; an append that
// could never fit is written through) and a per-partition flusher writes them, in pieces of at most
// 8 MiB; a rotation lists the next segment and leaves the seal to the flusher or to whoever needs it
// first: Sync, WaitSealed, Purge, Close or the next rotation. With RotateNewline, a full segment that
// ends inside a line takes the next append up to its first newline, and the rest starts the next
// segment (rotateon.go).
//
// persist=sync (mode Sync) returns from Append only once the bytes are durable: the blocks and the
// padded tail in one write after the tail's record (an append ending on a block boundary needs no
// record), then fdatasync for io=direct and io=buffered. The file stays padded between appends;
// Sync, a seal and Close make it exact. Rotation is inline's.
//
// Sync writes the dirty bytes, pads and writes the tail block, truncates to the exact size and
// fdatasyncs. A seal does the same with fsync, then fsyncs the directory.
//
// # A full disk
//
// Disk space is reserved (fallocate, KEEP_SIZE) before an append is accepted, ahead in steps, so an
// append that does not fit fails with ENOSPC, accepts nothing, and leaves the partition usable; every
// accepted append survives. A rotation that finds no space changes nothing and fails the append; if
// only the next segment cannot be created, the sealed one stays last and the next Append retries.
// Sync and seals need no new space: the tail block and both .commit slots are allocated already. An
// append, or a topic's or partition's creation, that meets ENOSPC first takes back what the other
// partitions reserved ahead and tries once more (space.go).
//
// A deferred write that still meets ENOSPC keeps its bytes in memory and readable; Append and Sync
// retry it first and fail while it fails, and Close fails and loses them. Any other failed write, and
// every failed fsync, is sticky: the partition refuses writes until the Log is reopened, because the
// kernel may have dropped the data and cleared the error (the lesson PostgreSQL learned about fsync).
//
// Running out of descriptors is never sticky: a seal takes both descriptors it needs before it
// changes anything, and one out of them (EMFILE, ENFILE) is retried like a deferred write on a full
// disk, or, inline, fails the append with the segment still active.
//
// # The padded-block trap and the recovery rule
//
// A direct-I/O flush writes the last partial block padded with zeros and truncates afterwards (sync
// mode leaves it padded until the next append); a crash in between leaves zeros that look like data.
// So before every padded write the partition makes a commit record durable. Recovery of the active
// segment (base, file size S) tries the current and then the previous record R with R.base == base:
//
//	for each R {
//	        if S == R.length { trust S }            // exact as R left it
//	        if S == alignUp(R.length, R.block) &&
//	           CRC-32C(file[S-R.block, S)) == R.blockCRC {
//	                truncate the file to R.length   // the padding never became data
//	        }
//	}
//	trust S
//
// then fdatasync it. The previous record matters in sync mode, where the file can still end in its
// padded block when the current record's padded write never happened. Sealed segments are trusted
// by size, except that if the last segment is empty (a deferred rotation may have been interrupted),
// the one before it gets the same repair, and if it then ends before the empty one's base, the empty
// one is removed and it is active again. Recovery
// costs a listing and a stat per segment, and two records and at most two block reads per partition.
// The rule is exact because padding reaches the disk only after its record, and the CRC matches only
// while the file ends in that block. Data equal to the padding could match; so after a Sync, seal or
// sync-mode append that ends where either record's block ends, an exact-length record is written,
// at which recovery stops.
//
// # Durability after a crash
//
// Nothing acknowledged by Sync or a seal (inline: the rotation; deferred: WaitSealed or a later Sync)
// is lost, no padding or torn byte appears as data, and a recovered partition is a prefix of what was
// appended. Beyond Sync:
//
//	io        persist   process killed (kill -9)            power loss
//	buffered  inline    nothing acknowledged is lost         unsynced appends may be lost
//	direct    inline    < one block (alignment) per          unsynced appends may be lost
//	                    partition: the in-memory tail
//	dsync     inline    < one block per partition            < one block per partition (every
//	                                                         full block was written O_DSYNC)
//	any       deferred  appends not yet flushed are lost     unsynced appends may be lost
//	any       sync      nothing acknowledged is lost         nothing acknowledged is lost
//
// The crash tests model a kill as "every completed call persists" and a power loss as "each file
// keeps what preceded its last fdatasync or fsync, plus O_DSYNC writes; each directory its entries
// before its last fsync; one file or directory may also keep a prefix of its later calls".
//
// # Locking
//
// Locks are taken in this order, and never while holding one below:
//
//   - Log.nsMu: namespace changes and Close. Log.mu and Topic.mu guard maps only.
//   - Partition.nsMu: Purge against Purge, delete and close. Held across unlink and fsync.
//   - writer.appendMu: the order of appends and rotations. Held across inline writes, seals and a
//     deferred append's wait for memory. Then idleState.mu, the idle timer's.
//   - writer.mu: the files. The active and sealing Files, the commit log, reservations, the
//     flusher's writes, seals, and recording a write failure. Held across disk I/O.
//   - segList.mu: the segment list and the seal in progress, which a deferred rotation changes
//     together without waiting for writer.mu. Memory only.
//   - segment.mu: one segment's read source; readers hold it shared for one read. The seal switches
//     the source, and purge and close close it, exclusively, so no read meets a reused descriptor.
//   - fdCache.mu: the descriptor budget's count and cached descriptors. Memory only.
//   - budget.mu: the Log's chunk memory; appends wait on its cond. Memory only.
//   - dirtyBuf.mu: one deferred segment's chunks, shared by the appender, the flusher and readers.
//     Memory only.
//
// ReadAt, ReadSegment, Segments and Segment take only segList.mu, segment.mu and dirtyBuf.mu, so they
// never wait for a write (WaitSealed may: it finishes the seal). The health (one sticky value that
// only worsens), the flusher's state, sizes and offsets are atomics, read without locks.
//
// Every goroutine and timer has an owner that stops it: a partition's flusher, its lazy-start timer
// and its idle timer stop at its close or delete; the Log's retention goroutine and chunk-trim timer
// at Close; the tier's uploader and the transfers it starts at Close (a partition's at its delete).
//
// # Descriptors and idle partitions
//
// Every descriptor segments opens counts against Config.MaxOpenFiles (fdCache). Past it, idle ones are
// closed, least recently used first: sealed segments' read descriptors, then whole idle partitions,
// which also close after IdleRelease without an append (idle.go). A released partition's active
// segment is exact and durable on disk (the release syncs it), its readers read the backing file, and
// its next append reopens it. The budget never waits for a partition's lock (TryLock): a partition
// someone holds is not idle, and so a release from inside another partition's operation cannot
// deadlock. Running out of descriptors anyway fails only the operation that needed one.
//
// # Tiered storage
//
// With Config.Remote set, sealed segments are uploaded to an object store and their local files may
// go (remote.go, upload.go, reconcile.go, tiergc.go). A tiered partition has a manifest,
// DATA/<topic>/<partition>/.tier, JSON, replaced atomically (temp file, fsync, rename, fsync of the
// directory): the log's start offset and an entry per stored segment with its size, ETag, seal time
// and state: uploading (written before the upload, best effort), verified (the store verified the
// CRC-32C and a HEAD showed the object whole), evicted (the local file is gone; reads go to the
// store), deleting (purged; the object is deleted in the background). DATA/.tier-gc lists deleted
// partitions whose objects are still being deleted; a partition made again under the name uploads
// nothing until they are gone.
//
// One goroutine of the Log starts transfers: per partition one at a time, oldest sealed segment
// first, at most TierConcurrency in flight, a failed one retried after an exponential backoff with
// jitter. It takes Partition.nsMu only to evict (against Purge, delete and close) and never a lock of
// the write path, so uploads do not stall appends. partTier.mu (the manifest) comes after nsMu.
//
// Eviction needs a verified copy. The manifest says evicted before the file goes whenever it can be
// written; on a full disk the file goes first and the manifest follows, because the bucket
// describes itself: reconcile, at Open, lists each partition's objects and takes up those that fit
// the log where no local segment or entry covers them. It also keeps verified entries whose object
// is still there, lists evicted ones as remote segments, forgets uploading entries (the uploader
// sees an object that arrived whole with a HEAD and does not send it again), aborts unfinished
// multipart uploads, and deletes objects below the log's start (retention that a crash interrupted).
// A fresh data directory takes up every partition the store holds, with an empty active segment at
// the stored log's end. RemoteReadOnly (ro mounts) never writes to the store, and shows it as of Open:
// at the next Open, a partition whose only local segment is that empty active one has it moved to the
// stored log's new end first (catchUpReadOnly).
//
// RetentionBytes and RetentionAge bound the whole log and delete objects too; LocalRetentionBytes and
// LocalRetentionAge only evict. Under disk pressure (free space below two segments, at most a tenth
// of the filesystem) verified segments are evicted oldest first whatever the local retention says.
package segments
