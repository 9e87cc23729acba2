"""Environment locks: no deploys until someone unlocks; a lock the bot set needs a reason to lift."""

from __future__ import annotations

from bot.chat.base import Directory
from bot.domain.deployment import EventRecord, Lock
from bot.domain.errors import Refused
from bot.engine.policy import may_operate
from bot.engine.port import Ledger
from bot.store.base import Store


class Locks:
    """`/deploy lock` and `/deploy unlock`, and the bot's own lock after an automatic rollback."""

    def __init__(self, ledger: Ledger, store: Store, directory: Directory) -> None:
        self.ledger = ledger
        self.store = store
        self.directory = directory

    def lock(self, user: str, env_name: str, reason: str | None, *, automatic: bool = False) -> Lock:
        """Lock an environment against deploys (`automatic`: the bot's own lock, no policy check)."""
        env = self.ledger.env(env_name)
        if not automatic and (why := may_operate(env, user, self.directory)):
            self.ledger.refuse(user, env.name, "lock", why)
        now = self.ledger.now()
        lock = Lock(env=env.name, owner=user, reason=reason or "no reason given", at=now, automatic=automatic)
        event = EventRecord(at=now, actor=user, action="lock", env=env.name, detail=lock.reason)
        if not self.store.set_lock(lock, event):
            existing = self.store.get_lock(env.name)
            who = f"{existing.owner}: {existing.reason}" if existing else "someone"
            raise Refused(f"{env.name} is already locked by {who}")
        return lock

    def unlock(self, user: str, env_name: str, reason: str | None) -> Lock:
        """Unlock an environment. A lock the bot set (after a rollback) needs a reason."""
        env = self.ledger.env(env_name)
        if why := may_operate(env, user, self.directory):
            self.ledger.refuse(user, env.name, "unlock", why)
        existing = self.store.get_lock(env.name)
        if existing is None:
            raise Refused(f"{env.name} is not locked")
        if existing.automatic and not reason:
            raise Refused(f"{env.name} was locked by gonogo ({existing.reason}); unlock it with a reason")
        event = EventRecord(at=self.ledger.now(), actor=user, action="unlock", env=env.name, detail=reason)
        removed = self.store.clear_lock(env.name, event)
        if removed is None:
            raise Refused(f"{env.name} is not locked")
        return removed


__all__ = ["Locks"]
