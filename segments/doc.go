// Package segments is the storage engine of segfs: durable, append-only partition logs made of
// segment files written through package directio. docs/architecture.md shows where it sits.
//
// # On-disk format
//
//	DATA/.lock                           flock(LOCK_EX|LOCK_NB) of the process that has DATA open
//	DATA/<topic>/<partition>/<base>.log  a segment; <base> is its first partition offset, 20 digits
//	DATA/<topic>/<partition>/.commit     the padded-block record (below)
//	DATA/[<topic>/].deleted-<name>-<n>   tombstone of an interrupted delete; Open removes it
//
// A partition's bytes are its segments concatenated in base order, unframed. Every segment but
// the last (active) one is sealed: exact size, fsynced, never written again. Deferred, the one
// before the active segment may still be sealing, and the active one gets no write until it is
// done. A gap between segments is a purged range; an overlap fails Open.
//
// .commit has two 512-byte slots, written alternately (slot seq%2) with pwrite and fdatasync. A
// record, little endian: magic "SGC1" u32, block u32, seq u64, base i64, length i64, blockCRC u32
// (CRC-32C of the zero-padded block [alignDown(length), alignUp(length))), crc u32 (CRC-32C of the
// 36 bytes before it). The valid slot with the higher seq is current, the other previous.
//
// # Writing
//
// An append is atomic, in call order, and never spans segments: one that does not fit a non-empty
// active segment rotates first. Inline, Append writes every full block and a rotation seals before
// creating the next segment. Deferred, Append copies into pool chunks (MaxDirty per partition,
// MaxDirtyTotal in all; an append that could never fit is written through), a per-partition
// flusher writes them in pieces of at most 8 MiB, and whoever needs the seal first does it.
// RotateNewline is in rotateon.go.
//
// persist=sync returns once the bytes are durable: blocks and padded tail in one write after the
// tail's record, then fdatasync unless io=dsync. The file stays padded between appends. Sync
// writes the dirty bytes and the padded tail, truncates and fdatasyncs; a seal fsyncs the file and
// the directory.
//
// # A full disk
//
// Space is reserved (fallocate, KEEP_SIZE) ahead of appends, so an append that does not fit fails
// with ENOSPC, accepts nothing and leaves the partition usable; Sync and seals need no new space.
// A rotation without space changes nothing; if only the next segment cannot be created, the
// sealed one stays last and the next Append retries. On ENOSPC an append or creation first takes
// back what other partitions reserved ahead and retries once (space.go).
//
// A deferred write that meets ENOSPC keeps its bytes in memory and readable; Append and Sync retry
// it and fail while it fails; Close loses them. Any other failed write, and every failed fsync, is
// sticky until the Log is reopened: the kernel may have dropped the data and cleared the error.
// EMFILE and ENFILE are never sticky: a seal takes its descriptors before changing anything.
//
// # The padded-block trap and the recovery rule
//
// A direct-I/O flush writes the last partial block padded with zeros and truncates afterwards; a
// crash in between leaves zeros that look like data. So a commit record is made durable before
// every padded write, and recovery of the active segment (base, file size S) tries the current,
// then the previous record R with R.base == base:
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
// then fdatasync it. The previous record matters in sync mode, where the file can end in its
// padded block if the current record's padded write never happened. Sealed segments are trusted
// by size, except after an interrupted deferred rotation (an empty last segment): the one before
// gets the same repair, and the empty one goes if it would leave a hole. The rule is exact because
// padding reaches the disk only after its record. Data equal to the padding could match, so a
// Sync, seal or sync-mode append ending at a record's block end writes an exact-length record.
//
// # Durability after a crash
//
// Nothing acknowledged by Sync or a seal (inline: the rotation; deferred: WaitSealed or a later
// Sync) is lost, no padding or torn byte appears as data, and a recovered partition is a prefix of
// what was appended. Beyond Sync:
//
//	io        persist   process killed (kill -9)            power loss
//	buffered  inline    nothing acknowledged is lost         unsynced appends may be lost
//	direct    inline    < one block per partition (tail)     unsynced appends may be lost
//	dsync     inline    < one block per partition            < one block per partition
//	any       deferred  appends not yet flushed are lost     unsynced appends may be lost
//	any       sync      nothing acknowledged is lost         nothing acknowledged is lost
//
// The crash tests model a kill as "every completed call persists" and a power loss as "what
// preceded each file's and directory's last sync persists, and a prefix of one's later calls".
//
// # Locking
//
// Locks are taken in this order, and never while holding one below:
//
//   - Log.nsMu: namespace changes and Close. Log.mu and Topic.mu guard maps only.
//   - Partition.nsMu: Purge against Purge, delete and close. Held across unlink and fsync.
//   - writer.appendMu: the order of appends and rotations. Held across inline writes, seals and a
//     deferred append's wait for memory. Then idleState.mu, the idle timer's.
//   - writer.mu: the files: active and sealing Files, commit log, reservations, the flusher's
//     writes, seals, recording a write failure. Held across disk I/O.
//   - segList.mu: the segment list and the seal in progress, changed together by a deferred
//     rotation without writer.mu. Memory only.
//   - segment.mu: one segment's read source, held shared for one read and exclusively to switch or
//     close it, so no read meets a reused descriptor.
//   - fdCache.mu: the descriptor budget. Memory only.
//   - budget.mu: the Log's chunk memory; appends wait on its cond. Memory only.
//   - dirtyBuf.mu: one deferred segment's chunks. Memory only.
//
// ReadAt, ReadSegment, Segments and Segment take only segList.mu, segment.mu and dirtyBuf.mu, so
// they never wait for a write (WaitSealed may: it finishes the seal). Health (sticky, only
// worsens), flusher state, sizes and offsets are atomics.
//
// Every goroutine and timer stops at its owner's close: a partition's flusher and timers at its
// close or delete; the Log's retention, chunk-trim timer and uploader at Close.
//
// # Descriptors and idle partitions
//
// Every descriptor counts against Config.MaxOpenFiles (fdCache). Past it, idle ones close, least
// recently used first: sealed segments' read descriptors, then idle partitions, which also close
// after IdleRelease without an append (idle.go). The budget only TryLocks a partition, so a release
// from inside another partition's operation cannot deadlock.
//
// # Tiered storage
//
// With Config.Remote, sealed segments are uploaded and their local files may go. A tiered
// partition's manifest, DATA/<topic>/<partition>/.tier (JSON, replaced atomically), holds the log's
// start and per segment its size, ETag, seal time and state: uploading, verified (CRC-32C checked
// by the store, object whole per HEAD), evicted (reads go to the store) or deleting. DATA/.tier-gc
// lists deleted partitions with objects left; a partition recreated under the name uploads nothing
// until they are gone.
//
// One goroutine starts transfers, oldest first, one per partition and TierConcurrency in all,
// retried with jittered backoff. It takes no write-path lock and Partition.nsMu only to evict;
// partTier.mu (the manifest) comes after nsMu.
//
// Eviction needs a verified copy. On a full disk the file goes before the manifest says so, since
// the bucket describes itself: at Open, reconcile keeps verified entries whose object exists, lists
// evicted ones as remote, forgets uploading ones, takes up objects that fit the log, aborts
// unfinished multipart uploads and deletes objects below the log's start. A fresh data directory
// takes up every stored partition. RemoteReadOnly never writes to the store.
//
// RetentionBytes and RetentionAge bound the whole log; the local retentions only evict. Under disk
// pressure (free space below two segments, at most a tenth of the disk) verified segments are
// evicted oldest first regardless.
package segments
