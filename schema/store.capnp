# Stored records of glm's shard store (storage/, docs/store-format.md).
#
# Every record is one unpacked Cap'n Proto message (standard framing: segment
# table then segments) stored as a RocksDB value. Every record starts with
# the same two fields so that a reader can refuse what it cannot read:
#   formatVersion  the version of this schema the writer used; a reader that
#                  knows versions up to N refuses N+1 with a clear error.
#   tokenizerHash  the hash of the tokenizer whose ids the record holds; a
#                  store never mixes tokenizers.
# Evolution: add fields at the end only (Cap'n Proto keeps old readers
# working); bump kStoreFormatVersion (schema/record_codec.h) when a change
# makes old readers wrong, and describe it in docs/store-format.md.
@0x8250bff93886f619;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("glm::schema::capnp");

# One tokenized document of the corpus (family `docs`, key = doc id as 8
# bytes big-endian). Plain form: glm::Document (schema/records.h).
struct DocumentRecord {
  formatVersion @0 :UInt32;       # schema version of this record (kStoreFormatVersion)
  tokenizerHash @1 :UInt64;       # hash of the tokenizer that produced `tokens`
  id @2 :UInt64;                  # dense index in the corpus manifest, 0..N-1; equals the key
  tokens @3 :List(Int32);         # token ids, ending with the end-of-document token
  sentenceEnd @4 :List(UInt8);    # per token: 1 if it ends a sentence, else 0; same length as tokens
}

# A half-open span [start, end) of a sample's source (GLM_SPEC.md 2.4).
struct Span {
  start @0 :Int32;                # first position in `source`, inclusive
  end @1 :Int32;                  # one past the last position in `source`
}

# One model-ready GLM training sample (family `samples`, key = objective (1
# byte) | epoch (4 bytes BE) | index (8 bytes BE)). Plain form: glm::Sample.
struct SampleRecord {
  formatVersion @0 :UInt32;       # schema version of this record (kStoreFormatVersion)
  tokenizerHash @1 :UInt64;       # hash of the tokenizer whose ids this sample holds
  objective @2 :UInt8;            # glm::Objective: 0 blank [MASK], 1 sentence [sMASK], 2 document [gMASK]
  epoch @3 :UInt32;               # epoch of the sample; part of the key
  index @4 :UInt64;               # index within (objective, epoch); part of the key
  source @5 :List(Int32);         # the raw sample x, starting with [CLS]; length n
  spans @6 :List(Span);           # the masked spans of `source`, in Part-B order
  suffixLayout @7 :Bool;          # true: the document objective's prefix-LM layout (GLM_SPEC 2.6)
  tokens @8 :List(Int32);         # Part A ++ Part B input ids; length S
  targets @9 :List(Int32);        # prediction targets; length S
  lossMask @10 :List(UInt8);      # 1 where the loss counts, else 0; length S
  positionIds @11 :List(Int32);   # row 0 of the 2-D positions; length S
  blockPositionIds @12 :List(Int32);  # row 1 of the 2-D positions; length S
  sep @13 :Int32;                 # length of Part A: row i attends to j < sep or j <= i
}

# What a store is (family `meta`, key "store/info"); written when the store
# is created and checked on every open.
struct StoreInfoRecord {
  formatVersion @0 :UInt32;       # schema version the store was created with
  tokenizerHash @1 :UInt64;       # the one tokenizer every record of this store uses
  createdUnixMs @2 :Int64;        # wall-clock creation time, milliseconds since 1970 (informational)
  description @3 :Text;           # free text from the creator, e.g. the job name (informational)
}

# Cumulative-length index of the `docs` family (family `meta`, key
# "store/doc_index"): lets a reader map a global token position to
# (document, offset) without scanning every document. Rebuilt by
# SampleStore::BuildDocumentIndex(); writing documents deletes it.
struct DocIndexRecord {
  formatVersion @0 :UInt32;       # schema version of this record
  tokenizerHash @1 :UInt64;       # tokenizer of the indexed documents
  lengths @2 :List(UInt64);       # lengths[i] = number of tokens of document i, ids 0..N-1 dense
}
