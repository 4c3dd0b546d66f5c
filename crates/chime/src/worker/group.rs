//! Worker groups: Knot's `map` over forks, within one process. N workers, each with its own state;
//! [`Group::map`] runs a function on every member and collects the results in member order.

use std::fmt;
use std::future::Future;

use tokio::sync::oneshot;

use super::{Queue, Worker};
use crate::error::Error;
use crate::scheduler::Scheduler;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// N workers with a state each; made by [`Scheduler::group`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// struct Fork { id: usize, hits: u64 }
/// let sched = chime::Scheduler::start();
/// let group = sched.group(3, |id| Fork { id, hits: 0 });
/// assert_eq!(group.map(|fork: &mut Fork| fork.id).await?, vec![0, 1, 2]);   // map 'worker.id'
/// group.map(|fork: &mut Fork| fork.hits += 1).await?;
/// assert_eq!(group.map(|fork: &mut Fork| fork.hits).await?, vec![1, 1, 1]);
/// # Ok(()) }
/// ```
pub struct Group<S> {
    members: Vec<Worker<Job<S>>>,
}

impl<S> fmt::Debug for Group<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("members", &self.members.len()).finish()
    }
}

impl Scheduler {
    /// Starts `n` workers; member `i` owns the state `init(i)` and runs what [`Group::map`] and
    /// [`Group::run_on`] send it, one job at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let group = sched.group(2, |id| (id, Vec::<String>::new()));
    /// group.run_on(1, |(_, log): &mut (usize, Vec<String>)| log.push("hello".into())).await?;
    /// assert_eq!(group.map(|(id, log): &mut (usize, Vec<String>)| (*id, log.len())).await?, [(0, 0), (1, 1)]);
    /// # Ok(()) }
    /// ```
    ///
    /// Knot Resolver's forks, each with its own state, within one process; [`Group::map`] is its
    /// `map`.
    pub fn group<S: Send + 'static>(&self, n: usize, mut init: impl FnMut(usize) -> S) -> Group<S> {
        let members = (0..n)
            .map(|i| {
                let mut state = Some(init(i));
                self.worker_builder().name(format!("group member {i}")).spawn(
                    move |mut queue: Queue<Job<S>>| {
                        let mut owned = state.take().expect("group members are never restarted");
                        async move {
                            while let Some(job) = queue.pop().await {
                                job(&mut owned);
                            }
                        }
                    },
                )
            })
            .collect();
        Group { members }
    }
}

impl<S: Send + 'static> Group<S> {
    /// Members in the group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// assert_eq!(sched.group(4, |_| ()).len(), 4);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no member.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// assert!(sched.group(0, |_| ()).is_empty());
    /// assert!(!sched.group(1, |_| ()).is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Runs `f` on every member's state and returns the results ordered by member index.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerGone`] if a member has stopped (closed, or it panicked, in `f` or before).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let group = sched.group(3, |id| id * 10);
    /// assert_eq!(group.map(|state: &mut usize| *state).await?, [0, 10, 20]);
    /// group.close();
    /// assert_eq!(group.map(|state: &mut usize| *state).await, Err(chime::Error::WorkerGone));
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `map 'worker.id'`, which returns one result per fork, in fork order.
    pub async fn map<R, F>(&self, f: F) -> Result<Vec<R>, Error>
    where
        R: Send + 'static,
        F: Fn(&mut S) -> R + Clone + Send + 'static,
    {
        let replies: Vec<_> = (0..self.members.len()).map(|i| self.run_on(i, f.clone())).collect();
        let mut results = Vec::with_capacity(replies.len());
        for reply in replies {
            results.push(reply.await?);
        }
        Ok(results)
    }

    /// Runs `f` on member `index`'s state.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchMember`] for an index past the group; [`Error::WorkerGone`] if the member stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let group = sched.group(2, |_| 0u64);
    /// assert_eq!(group.run_on(1, |hits: &mut u64| { *hits += 1; *hits }).await?, 1);
    /// assert_eq!(group.map(|hits: &mut u64| *hits).await?, [0, 1]);
    /// assert_eq!(group.run_on(2, |hits: &mut u64| *hits).await, Err(chime::Error::NoSuchMember { index: 2, members: 2 }));
    /// # Ok(()) }
    /// ```
    pub fn run_on<R, F>(&self, index: usize, f: F) -> impl Future<Output = Result<R, Error>> + use<R, F, S>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let sent = match self.members.get(index) {
            None => Err(Error::NoSuchMember { index, members: self.members.len() }),
            Some(member) => member
                .push(Box::new(move |state: &mut S| {
                    let _ = tx.send(f(state));
                }))
                .map(drop)
                .map_err(Error::from),
        };
        async move {
            sent?;
            rx.await.map_err(|_| Error::WorkerGone)
        }
    }

    /// Closes every member; each finishes its queued jobs and ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let group = sched.group(2, |_| ());
    /// group.close();
    /// assert_eq!(group.run_on(0, |_: &mut ()| ()).await, Err(chime::Error::WorkerGone));
    /// # Ok(()) }
    /// ```
    pub fn close(&self) {
        self.members.iter().for_each(Worker::close);
    }
}
