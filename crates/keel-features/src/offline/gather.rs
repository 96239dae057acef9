//! The second pass shared by both queries: reading chosen rows of a source
//! back (skipping the row groups that hold none), and the worker pool that
//! spreads a source's pieces over threads.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow::array::{new_empty_array, Array, ArrayRef, UInt32Array};
use arrow::compute::{concat, take};

use super::source::Source;
use crate::Result;

/// Reads the rows `row_ids` (sorted, without duplicates) of the stored
/// `columns`: one array per column, one element per row id, in order.
pub(crate) fn gather(
    source: &Source,
    row_ids: &[u64],
    columns: &[usize],
    batch_size: usize,
    workers: usize,
) -> Result<Vec<ArrayRef>> {
    let units = source.units();
    // Each job is a unit holding wanted rows, with the slice of `row_ids` it holds.
    let jobs: Vec<(usize, &[u64])> = units
        .iter()
        .enumerate()
        .filter_map(|(unit_index, unit)| {
            let (first, end) = unit.row_ids();
            let from = row_ids.partition_point(|&row_id| row_id < first);
            let to = row_ids.partition_point(|&row_id| row_id < end);
            (from < to).then(|| (unit_index, &row_ids[from..to]))
        })
        .collect();
    let per_worker = run_parallel(jobs.len(), workers, Vec::new, |pieces, job_index| {
        let (unit_index, wanted) = jobs[job_index];
        let mut cursor = 0;
        let mut unit_pieces: Vec<Vec<ArrayRef>> = vec![Vec::new(); columns.len()];
        source.scan(
            &units[unit_index],
            columns,
            batch_size,
            |first_row, arrays| {
                let batch_rows = arrays.first().map_or(0, |array| array.len()) as u64;
                let end = first_row + batch_rows;
                let mut local = Vec::new();
                while cursor < wanted.len() && wanted[cursor] < end {
                    // Row ids below `first_row` cannot occur: batches are contiguous.
                    local.push((wanted[cursor] - first_row) as u32);
                    cursor += 1;
                }
                if !local.is_empty() {
                    let indices = UInt32Array::from(local);
                    for (column_pieces, array) in unit_pieces.iter_mut().zip(arrays) {
                        column_pieces.push(take(array.as_ref(), &indices, None)?);
                    }
                }
                if cursor == wanted.len() {
                    return Ok(ControlFlow::Break(()));
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        pieces.push((job_index, unit_pieces));
        Ok(())
    })?;
    let mut pieces: Vec<(usize, Vec<Vec<ArrayRef>>)> = per_worker.into_iter().flatten().collect();
    pieces.sort_unstable_by_key(|(job_index, _)| *job_index);

    let mut gathered = Vec::with_capacity(columns.len());
    for (position, &column) in columns.iter().enumerate() {
        let parts: Vec<&dyn Array> = pieces
            .iter()
            .flat_map(|(_, unit_pieces)| unit_pieces[position].iter().map(|array| array.as_ref()))
            .collect();
        if parts.is_empty() {
            gathered.push(new_empty_array(source.data_type(column)));
        } else {
            gathered.push(concat(&parts)?);
        }
    }
    Ok(gathered)
}

/// Runs `step` on jobs `0..n_jobs` over at most `workers` threads; each thread
/// folds its jobs into a state made by `init`, and the states come back (in
/// no particular order). Stops early and returns the first error.
pub(crate) fn run_parallel<S: Send>(
    n_jobs: usize,
    workers: usize,
    init: impl Fn() -> S + Sync,
    step: impl Fn(&mut S, usize) -> Result<()> + Sync,
) -> Result<Vec<S>> {
    let workers = workers.clamp(1, n_jobs.max(1));
    if workers == 1 {
        let mut state = init();
        for job in 0..n_jobs {
            step(&mut state, job)?;
        }
        return Ok(vec![state]);
    }
    let next_job = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || -> Result<S> {
        let mut state = init();
        while !failed.load(Ordering::Relaxed) {
            let job = next_job.fetch_add(1, Ordering::Relaxed);
            if job >= n_jobs {
                break;
            }
            if let Err(error) = step(&mut state, job) {
                failed.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(state)
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        let mut states = Vec::with_capacity(workers);
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(state)) => states.push(state),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(states),
        }
    })
}

/// The threads to use: the caller's choice, else every core.
pub(crate) fn available_threads(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, |threads| threads.get())
}
