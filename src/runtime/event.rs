//! A one-shot, core-local event: set once, awaited by any number of tasks
//! on the same core (used for shutdown). A waiter registers its waker once
//! and removes it when dropped, so many idle connections cost O(1) each.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

#[derive(Debug, Default, Clone)]
pub struct Event {
    inner: Rc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    set: Cell<bool>,
    waiters: RefCell<Slab<Waker>>,
}

impl Event {
    pub fn set(&self) {
        if !self.inner.set.replace(true) {
            for w in self.inner.waiters.borrow_mut().drain() {
                w.wake();
            }
        }
    }

    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Resolves once the event is set.
    pub fn wait(&self) -> Wait {
        Wait {
            inner: self.inner.clone(),
            slot: None,
        }
    }
}

pub struct Wait {
    inner: Rc<Inner>,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.set.get() {
            return Poll::Ready(());
        }
        let slot = self.slot;
        let mut waiters = self.inner.waiters.borrow_mut();
        match slot.and_then(|s| waiters.get_mut(s)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => {
                let s = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.slot = Some(s);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            if let Ok(mut w) = self.inner.waiters.try_borrow_mut() {
                w.try_remove(s);
            }
        }
    }
}
