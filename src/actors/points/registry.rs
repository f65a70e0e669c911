//! The sharded map user -> actor address. Actors start on first use (on one of the
//! service's arbiters) and remove themselves when they stop after an idle time, so memory
//! follows the active users, not all users.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actix::{Actor, Addr, ArbiterHandle};
use parking_lot::Mutex;

use super::actor::{Departures, PointsActor, Shared};
use super::error::PointsError;
use super::messages::StopActor;

const SHARDS: usize = 64;

struct Entry {
    generation: u64,
    addr: Addr<PointsActor>,
}

pub struct Registry {
    shards: Vec<Mutex<HashMap<Arc<str>, Entry>>>,
    hasher: RandomState,
    next_generation: AtomicU64,
    closed: AtomicBool,
    arbiters: Vec<ArbiterHandle>,
    shared: Arc<Shared>,
}

impl Registry {
    pub fn new(shared: Arc<Shared>, arbiters: Vec<ArbiterHandle>) -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            next_generation: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            arbiters,
            shared,
        }
    }

    fn slot(&self, user: &str) -> usize {
        usize::try_from(self.hasher.hash_one(user)).unwrap_or(0)
    }

    fn shard(&self, user: &str) -> Option<&Mutex<HashMap<Arc<str>, Entry>>> {
        self.shards.get(self.slot(user) % SHARDS)
    }

    /// The user's actor, started if there is none (or the last one stopped).
    pub fn get(self: &Arc<Self>, user: &str) -> Result<Addr<PointsActor>, PointsError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PointsError::Unavailable(
                "points engine is shutting down".into(),
            ));
        }
        let shard = self
            .shard(user)
            .ok_or_else(|| PointsError::Unavailable("no registry shard".into()))?;
        let mut map = shard.lock();
        if let Some(e) = map.get(user)
            && e.addr.connected()
        {
            return Ok(e.addr.clone());
        }
        let arbiter = self
            .arbiters
            .get(self.slot(user) / SHARDS % self.arbiters.len().max(1))
            .ok_or_else(|| PointsError::Unavailable("no points arbiter".into()))?;
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let key: Arc<str> = Arc::from(user);
        let weak: std::sync::Weak<Registry> = Arc::downgrade(self);
        let departures: std::sync::Weak<dyn Departures> = weak;
        let actor = PointsActor::new(key.clone(), generation, self.shared.clone(), departures);
        let addr = PointsActor::start_in_arbiter(arbiter, move |_| actor);
        map.insert(
            key,
            Entry {
                generation,
                addr: addr.clone(),
            },
        );
        Ok(addr)
    }

    /// Called by an actor that stopped: forget it unless a newer one took its place.
    pub fn remove(&self, user: &str, generation: u64) {
        if let Some(shard) = self.shard(user) {
            let mut map = shard.lock();
            if map.get(user).is_some_and(|e| e.generation == generation) {
                map.remove(user);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new work and asks every actor to write what it holds and stop.
    pub fn close(&self) -> Vec<Addr<PointsActor>> {
        self.closed.store(true, Ordering::Release);
        let addrs: Vec<Addr<PointsActor>> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .values()
                    .map(|e| e.addr.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        for a in &addrs {
            a.do_send(StopActor);
        }
        addrs
    }
}

impl Departures for Registry {
    fn remove(&self, user: &str, generation: u64) {
        Registry::remove(self, user, generation);
    }
}
