"""The bench's users: how many memories each has (uniform or zipf), and their size classes.

`--users-distribution uniform` gives every user rows/users memories (the first rows % users
one more). `zipf` gives the user of rank r (1-based) a share proportional to 1/r (exponent
1), as real tenants are skewed: with 100,000 rows and 1,000 users the top user has ~13.2K
memories, rank 10 ~1.3K, the tail tens. Counts are computed here, deterministically: every
user first gets one memory (every user needs one), the rest is shared out by 1/r with the
largest-remainder method, so the counts sum to exactly --rows and never increase with rank.

The generator in the server (components.bench.data) maps row k to a user through a small
range table `bench_users` (one row per user: its first row number and its id): row k lands
at position (k * stride) mod rows, a permutation, so each user's rows are scattered over the
table as a live table's are, not stored side by side.

Size classes group users by their memory count in decades, each centred on a power of ten
with boundaries at the half decades (10^(k - 1/2) <= count < 10^(k + 1/2)):

    ~1 1-3, ~10 4-31, ~100 32-316, ~1K 317-3,162, ~10K 3,163-31,622, ~100K 31,623-316,227 ...

Each class that exists gets the same number of timed queries; the reports show one row per
class, because a user with 13K memories and a user with 14 take different plans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from components.bench.common import Names

__all__ = ["DISTRIBUTIONS", "GOLDEN", "SUFFIXES", "USERS_TABLE", "SizeClass", "classes",
           "create_users_table", "describe", "pick", "size_class", "stride", "user_counts",
           "user_id"]

DISTRIBUTIONS = ("uniform", "zipf")
USERS_TABLE = "bench_users"
GOLDEN = (math.sqrt(5) - 1) / 2  # the stride's share of rows: scatters neighbours far apart
SUFFIXES = ("", "K", "M", "G")


def user_counts(rows: int, users: int, distribution: str) -> list[int]:
    """Memories per user, index 0 the top user; they sum to `rows`, each at least 1."""
    if not 1 <= users <= rows:
        raise ValueError(f"users must be 1 to rows ({rows}), not {users}")
    if distribution == "uniform":
        share, extra = divmod(rows, users)
        return [share + (1 if rank < extra else 0) for rank in range(users)]
    if distribution != "zipf":
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
    spare = rows - users  # one memory each first
    weights = [1 / rank for rank in range(1, users + 1)]
    total = math.fsum(weights)
    quotas = [spare * w / total for w in weights]
    counts = [1 + math.floor(q) for q in quotas]
    left = rows - sum(counts)
    # Largest remainders first; on a tie the higher rank, so counts never grow with rank.
    order = sorted(range(users), key=lambda r: (-(quotas[r] - math.floor(quotas[r])), r))
    for rank in order[:left]:
        counts[rank] += 1
    return counts


def user_id(number: int, uuid_form: bool) -> str:
    """User `number`'s id: user_<n>, or with --rls uuid-shaped text (a valid uuid's
    canonical form, version and variant digits set) that the seed's uid()::text matches."""
    return f"00000000-0000-4000-8000-{number:012d}" if uuid_form else f"user_{number}"


def stride(rows: int) -> int:
    """A step coprime to `rows`, near the golden share of it: k -> (k * stride) mod rows is
    a permutation that puts consecutive rows far apart."""
    step = max(1, round(rows * GOLDEN))
    while math.gcd(step, rows) != 1:
        step += 1
    return step


# --- size classes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SizeClass:
    """Users whose memory count is within half a decade of 10^exponent."""

    exponent: int

    @property
    def low(self) -> int:
        # The smallest n with n^2 >= 10^(2k - 1), i.e. n >= 10^(k - 1/2), in integers.
        return 1 if self.exponent == 0 else math.isqrt(10 ** (2 * self.exponent - 1) - 1) + 1

    @property
    def high(self) -> int:
        return math.isqrt(10 ** (2 * self.exponent + 1) - 1)  # n < 10^(k + 1/2)

    @property
    def label(self) -> str:
        """~1, ~10, ~100, ~1K, ~10K, ~100K, ~1M ..."""
        thousands, digits = divmod(self.exponent, 3)
        return f"~{10 ** digits}{SUFFIXES[thousands]}"

    @property
    def key(self) -> str:
        """The label as part of a metric's name: 1, 10, 100, 1k, 10k ..."""
        return self.label[1:].lower()


def size_class(count: int) -> SizeClass:
    exponent = 0
    while count * count >= 10 ** (2 * exponent + 1):
        exponent += 1
    return SizeClass(exponent)


def classes(counts: Sequence[int]) -> dict[SizeClass, list[int]]:
    """The user numbers of each class that exists, largest class first, users by rank."""
    found: dict[SizeClass, list[int]] = {}
    for number, count in enumerate(counts):
        found.setdefault(size_class(count), []).append(number)
    return dict(sorted(found.items(), key=lambda item: -item[0].exponent))


def pick(users: Sequence[int], count: int) -> list[int]:
    """`count` users spread evenly over `users` (in their order); in rotation when there
    are fewer users than queries."""
    if count <= len(users):
        return [users[i * len(users) // count] for i in range(count)]
    return [users[i % len(users)] for i in range(count)]


def describe(counts: Sequence[int], distribution: str) -> dict[str, Any]:
    """The distribution for the report: its shape and each class's users and range."""
    ordered = sorted(counts)
    return {
        "distribution": distribution,
        "rule": ("rows/users each" if distribution == "uniform"
                 else "user of rank r gets 1 + (rows - users) * (1/r) / H(users), "
                      "largest remainders rounded up"),
        "top_user_memories": ordered[-1],
        "median_user_memories": ordered[len(ordered) // 2],
        "smallest_user_memories": ordered[0],
        "classes": [{"class": c.label, "key": c.key, "memories_per_user": [c.low, c.high],
                     "users": len(members), "memories": sum(counts[u] for u in members),
                     "largest": counts[members[0]], "smallest": counts[members[-1]]}
                    for c, members in classes(counts).items()],
        "class_rule": "a user's class is the power of ten nearest its memory count on a log "
                      "scale: 10^(k-1/2) <= count < 10^(k+1/2)",
    }


def create_users_table(conn: psycopg.Connection[Any], n: Names, counts: Sequence[int],
                       uuid_ids: bool) -> None:
    """The range table the generator maps positions to users with (in the scratch schema,
    dropped with it)."""
    table = n.obj(USERS_TABLE)
    conn.execute(f"CREATE TABLE {table} (user_no integer PRIMARY KEY,"
                 " first_row bigint NOT NULL UNIQUE, memories integer NOT NULL,"
                 " user_id text NOT NULL)")
    firsts = [0]
    for count in counts[:-1]:
        firsts.append(firsts[-1] + count)
    conn.execute(
        f"INSERT INTO {table} (user_no, first_row, memories, user_id)"
        " SELECT * FROM ROWS FROM (pg_catalog.unnest(%s::integer[]),"
        " pg_catalog.unnest(%s::bigint[]), pg_catalog.unnest(%s::integer[]),"
        " pg_catalog.unnest(%s::text[]))",
        (list(range(len(counts))), firsts, list(counts),
         [user_id(number, uuid_ids) for number in range(len(counts))]))
    conn.execute(f"ANALYZE {table}")
