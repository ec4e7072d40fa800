"""A durable privacy budget per (dataset, recipient): total ε (and δ), what was spent, refusal when spent.

Stored in ``budget.sqlite`` in a folder the caller owns. Every charge is one ``BEGIN IMMEDIATE``
transaction (check and debit under the write lock), so two processes cannot both spend the last of a budget,
and a crash leaves either the whole charge or none. Budgets only shrink: reopening with a different total
is refused rather than silently topping it up.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from trustlane.errors import AnalysisRefused, StorageError, UsageError

FILE = "budget.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
  dataset TEXT NOT NULL, recipient TEXT NOT NULL,
  epsilon REAL NOT NULL, delta REAL NOT NULL,
  epsilon_spent REAL NOT NULL DEFAULT 0, delta_spent REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (dataset, recipient));
CREATE TABLE IF NOT EXISTS charges (
  dataset TEXT NOT NULL, recipient TEXT NOT NULL, at_ns INTEGER NOT NULL,
  epsilon REAL NOT NULL, delta REAL NOT NULL, query TEXT NOT NULL);
"""
# Floating-point slack when a query spends exactly what is left.
_SLACK = 1e-12


class BudgetExhausted(AnalysisRefused):
    """The query would spend more privacy budget than is left; nothing was released."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__("denied", message, hint=hint)


@dataclass(frozen=True)
class Remaining:
    epsilon: float
    delta: float


class PrivacyBudget:
    def __init__(self, folder: Path, dataset: str, recipient: str, epsilon: float, delta: float = 0.0) -> None:
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise UsageError(f"a privacy budget needs a positive, finite epsilon, not {epsilon}")
        if not (math.isfinite(delta) and 0 <= delta < 1):
            raise UsageError(f"delta must be in [0, 1), not {delta}")
        if not dataset or not recipient:
            raise UsageError("a privacy budget needs a dataset id and a recipient id")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE
        self.dataset, self.recipient = dataset, recipient
        self.epsilon, self.delta = float(epsilon), float(delta)
        with contextlib.closing(self._connect()) as db:
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT epsilon, delta FROM budgets WHERE dataset=? AND recipient=?", (dataset, recipient)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO budgets (dataset, recipient, epsilon, delta) VALUES (?, ?, ?, ?)",
                    (dataset, recipient, self.epsilon, self.delta),
                )
            elif (row[0], row[1]) != (self.epsilon, self.delta):
                db.execute("ROLLBACK")
                raise UsageError(
                    f"the budget of {dataset!r} for {recipient!r} is ε={row[0]}, δ={row[1]}, "
                    f"not ε={epsilon}, δ={delta}",
                    hint="open it with the total it was created with; budgets cannot be raised",
                )
            db.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable budget file ({exc})") from None
        return db

    def remaining(self) -> Remaining:
        with contextlib.closing(self._connect()) as db:
            eps, dlt, e_spent, d_spent = db.execute(
                "SELECT epsilon, delta, epsilon_spent, delta_spent FROM budgets WHERE dataset=? AND recipient=?",
                (self.dataset, self.recipient),
            ).fetchone()
        return Remaining(max(0.0, eps - e_spent), max(0.0, dlt - d_spent))

    def spend(self, epsilon: float, delta: float, query: str) -> Remaining:
        """Debit atomically, or raise BudgetExhausted and debit nothing."""
        if not (math.isfinite(epsilon) and epsilon > 0) or not (math.isfinite(delta) and delta >= 0):
            raise UsageError(f"a charge needs ε > 0 and δ ≥ 0, got ε={epsilon}, δ={delta}")
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            eps, dlt, e_spent, d_spent = db.execute(
                "SELECT epsilon, delta, epsilon_spent, delta_spent FROM budgets WHERE dataset=? AND recipient=?",
                (self.dataset, self.recipient),
            ).fetchone()
            if e_spent + epsilon > eps + _SLACK or d_spent + delta > dlt + _SLACK:
                db.execute("ROLLBACK")
                raise BudgetExhausted(
                    f"privacy budget of dataset {self.dataset!r} for {self.recipient!r} is exhausted: the query "
                    f"needs ε={epsilon:g}, δ={delta:g}; left ε={max(0.0, eps - e_spent):g}, "
                    f"δ={max(0.0, dlt - d_spent):g} of ε={eps:g}, δ={dlt:g}",
                    hint="ask for fewer or coarser statistics, or agree a new dataset release with the holder",
                )
            db.execute(
                "UPDATE budgets SET epsilon_spent=?, delta_spent=? WHERE dataset=? AND recipient=?",
                (e_spent + epsilon, d_spent + delta, self.dataset, self.recipient),
            )
            db.execute(
                "INSERT INTO charges VALUES (?, ?, ?, ?, ?, ?)",
                (self.dataset, self.recipient, time.time_ns(), epsilon, delta, query),
            )
            db.execute("COMMIT")
            return Remaining(max(0.0, eps - e_spent - epsilon), max(0.0, dlt - d_spent - delta))
        finally:
            db.close()

    def charges(self) -> list[tuple[float, float, str]]:
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(
                "SELECT epsilon, delta, query FROM charges WHERE dataset=? AND recipient=? ORDER BY rowid",
                (self.dataset, self.recipient),
            ).fetchall()
        return [(float(e), float(d), str(q)) for e, d, q in rows]
