"""One model, many Python threads: concurrent transform/predict/score give the serial results;
fit while other threads use the estimator is safe (they keep the previous model until fit
returns); on the engine's model, use that overlaps a fit is refused with RuntimeError (model.h,
"Threads"). Each case runs in a subprocess, so that a crash or a hang fails the test."""

import json
import subprocess
import sys
import textwrap

from conftest import REPO

PRELUDE = textwrap.dedent("""
    import json, threading, time
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor
    from fastae import Autoencoder, NotFittedError
    def data(n, d, seed):
        return np.random.default_rng(seed).uniform(size=(n, d)).astype(np.float32)
""")


def run_child(code, timeout=180):
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_eight_threads_of_inference_equal_serial_results():
    result = run_child("""
        X = data(3000, 32, 0)
        ae = Autoencoder(hidden_layer_sizes=(16, 4), epochs=2, random_state=0).fit(X)
        slices = [slice(s, s + n) for s, n in ((0, 3000), (5, 1), (100, 257), (1000, 700), (2999, 1))]
        calls = {"transform": ae.transform, "predict": ae.predict, "score_samples": ae.score_samples,
                 "reconstruction_error": ae.reconstruction_error, "score": ae.score,
                 "inverse_transform": lambda A: ae.inverse_transform(ae.transform(A)), "get_weights":
                 lambda A: np.concatenate([np.concatenate([W.ravel(), b]) for W, b in ae.get_weights()])}
        serial = {(name, i): np.asarray(call(X[s])) for name, call in calls.items() for i, s in enumerate(slices)}
        start = threading.Barrier(8)
        def worker(t):
            start.wait()  # all eight begin together
            mismatches, calls_made = [], 0
            for r in range(6):
                for (name, i), want in serial.items():
                    if (t + r + i) % 2:  # threads take the calls in different orders
                        continue
                    got = np.asarray(calls[name](X[slices[i]]))
                    calls_made += 1
                    if got.dtype != want.dtype or not np.array_equal(got, want):
                        mismatches.append(f"{name}[{i}]")
            return mismatches, calls_made
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(worker, range(8)))
        print(json.dumps({"mismatches": sum((m for m, _ in results), []), "calls": sum(c for _, c in results)}))
    """)
    assert result["mismatches"] == []
    assert result["calls"] == 8 * 6 * 35 // 2  # every thread made its share of the 35 calls a round


def test_fit_while_other_threads_infer_they_get_the_previous_model_then_the_new_one():
    result = run_child("""
        import hashlib
        X = data(20000, 128, 1)
        probe = X[:64]
        def digest(ae):
            # three calls, each of which must see one whole model (not necessarily the same one:
            # fit may return between them)
            return (hashlib.sha1(ae.predict(probe).tobytes()).hexdigest(), repr(ae.score(probe)),
                    hashlib.sha1(b"".join(W.tobytes() + b.tobytes() for W, b in ae.get_weights())).hexdigest())
        ae = Autoencoder(hidden_layer_sizes=(64,), epochs=1, random_state=0).fit(X[:500])
        old = digest(ae)
        training, done = threading.Event(), threading.Event()
        def reader():
            seen = []
            while not done.is_set():
                during = training.is_set()
                try:
                    seen.extend((i, value, during) for i, value in enumerate(digest(ae)))
                except Exception as e:
                    seen.append((-1, "error " + repr(e), during))
            return seen
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(reader) for _ in range(4)]
            time.sleep(0.2)
            training.set()
            t0 = time.perf_counter()
            ae.set_params(epochs=3, batch_size=32, random_state=1).fit(X)
            fit_seconds = time.perf_counter() - t0
            training.clear()
            time.sleep(0.2)
            done.set()
            seen = sum((f.result() for f in futures), [])
        new = digest(ae)
        # the same fit run alone gives the same model: the readers disturbed nothing
        alone = Autoencoder(hidden_layer_sizes=(64,), epochs=3, batch_size=32, random_state=1).fit(X)
        print(json.dumps({
            "fit_seconds": fit_seconds,
            "old_during_fit": sum(1 for i, d, during in seen if i >= 0 and d == old[i] and during),
            "new": sum(1 for i, d, _ in seen if i >= 0 and d == new[i]),
            "neither": sorted(set(d for i, d, _ in seen if i < 0 or d not in (old[i], new[i]))),
            "same_as_alone": digest(alone) == new and alone.history_["loss"] == ae.history_["loss"],
        }))
    """)
    assert result["neither"] == []  # no error, never a half-trained or torn model
    assert result["old_during_fit"] > 0, result  # the readers ran while fit trained, on the previous model
    assert result["new"] > 0  # and got the new model once fit returned
    assert result["same_as_alone"]
    print(f"fit took {result['fit_seconds']:.2f} s; {result['old_during_fit']} reads of the previous model meanwhile")


def test_threads_reading_an_unfitted_estimator_during_its_first_fit_get_not_fitted_error():
    result = run_child("""
        X = data(20000, 64, 2)
        ae = Autoencoder(hidden_layer_sizes=(32,), epochs=3, batch_size=32, random_state=0)
        done, not_fitted_seen, result_seen = threading.Event(), threading.Event(), threading.Event()
        def reader():
            kinds = set()
            while not done.is_set():
                try:
                    ae.transform(X[:10])
                    kinds.add("result")
                    result_seen.set()
                except NotFittedError:
                    kinds.add("not fitted")
                    not_fitted_seen.set()
                except Exception as e:
                    kinds.add(repr(e))
            return sorted(kinds)
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(reader) for _ in range(2)]
            not_fitted_seen.wait(60)
            ae.fit(X)
            result_seen.wait(60)
            done.set()
            kinds = sorted(set(sum((f.result() for f in futures), [])))
        print(json.dumps({"kinds": kinds}))
    """)
    assert result["kinds"] == ["not fitted", "result"]


def test_two_concurrent_fits_on_one_estimator_leave_one_whole_result():
    result = run_child("""
        Xa, Xb = data(6000, 64, 3), data(6000, 64, 4)
        params = dict(hidden_layer_sizes=(32,), epochs=3, batch_size=32, random_state=0)
        ae = Autoencoder(**params)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ae.fit, [Xa, Xb]))
        a, b = Autoencoder(**params).fit(Xa), Autoencoder(**params).fit(Xb)
        def same(x, y):
            return (all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1])
                        for p, q in zip(x.get_weights(), y.get_weights())) and x.history_["loss"] == y.history_["loss"]
                    and x.n_iter_ == y.n_iter_ and x.loss_ == y.loss_
                    and x._model.optimizer_state()["steps"] == y._model.optimizer_state()["steps"])
        print(json.dumps({"is_a": same(ae, a), "is_b": same(ae, b)}))
    """)
    assert result["is_a"] != result["is_b"]  # weights, history and state all from the same one of the two fits


def test_engine_refuses_use_that_overlaps_a_fit_with_runtime_error():
    result = run_child("""
        X = data(2000, 32, 5)
        ae = Autoencoder(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X[:100])
        m = ae._model
        in_fit, probed = threading.Event(), threading.Event()
        def on_epoch(report):
            if report["epoch"] == 1:  # fit holds here, with the model being trained, until probed
                in_fit.set()
                probed.wait(60)
            return True
        fit_args = dict(optimizer=dict(optimizer="adam", learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                                       momentum=0.0, nesterov=False),
                        options=dict(epochs=2, batch_size=64, shuffle=True, seed=1, n_threads=1,
                                     resume_optimizer=False))
        trainer = threading.Thread(target=lambda: m.fit(X, None, None, None, None, None, scale=1.0, on_epoch=on_epoch,
                                                        **fit_args))
        trainer.start()
        in_fit.wait(60)
        probes = {"predict": lambda: m.predict(X[:5]), "encode": lambda: m.encode(X[:5]),
                  "sample_losses": lambda: m.sample_losses(X[:5]), "get_params": m.get_params,
                  "optimizer_state": m.optimizer_state, "copy": m.copy,
                  "set_params": lambda: m.set_params(np.zeros(m.n_params, np.float32)),
                  "init_weights": lambda: m.init_weights(3),
                  "fit": lambda: m.fit(X, None, None, None, None, None, scale=1.0, **fit_args)}
        refused = {}
        for name, call in probes.items():
            try:
                call()
                refused[name] = None
            except RuntimeError as e:
                refused[name] = str(e)
        probed.set()
        trainer.join()
        # and the reverse: a writer while a long inference runs on another thread
        big = data(100000, 32, 6)
        w = m.get_params()
        stop = threading.Event()
        def read():
            while not stop.is_set():
                try:
                    m.predict(big)
                except RuntimeError:  # both sides may back out in a close race (model_impl.h, UseGuard)
                    pass
        reading = threading.Thread(target=read)
        reading.start()
        writer_refusals, deadline = [], time.monotonic() + 60
        while len(writer_refusals) < 3 and time.monotonic() < deadline:
            try:
                m.set_params(w)  # the same values: one that slips in between two predicts changes nothing
            except RuntimeError as e:
                writer_refusals.append(str(e))
            time.sleep(0.001)  # let the reader take the GIL and enter predict
        stop.set()
        reading.join()
        print(json.dumps({"refused": refused, "steps": m.optimizer_state()["steps"], "writer": writer_refusals,
                          "usable": m.predict(X[:5]).shape == (5, 32)}))
    """)
    refused = result["refused"]
    assert all(refused.values()), refused
    assert refused["predict"].startswith("fastae: cannot run inference (encode, decode, predict) while fit")
    assert "in another thread" in refused["predict"]
    assert refused["fit"].startswith("fastae: cannot run fit while fit (or a setter) is already changing this model")
    assert result["steps"] == 2 * 32  # the paused fit finished its 2 epochs of 32 batches, undisturbed
    assert len(result["writer"]) == 3, result
    assert result["writer"][0].startswith("fastae: cannot run set_params while 1 other call(s)")
    assert result["usable"]


def test_inference_over_threads_equals_one_thread_bit_for_bit():
    # n_threads also splits inference (chunks of 256 samples); outputs must not depend on it.
    import numpy as np

    from fastae import Autoencoder
    X = np.random.default_rng(3).uniform(size=(2000, 20)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(12, 5), epochs=1, random_state=0, n_threads=1).fit(X)
    one = {"transform": ae.transform(X), "predict": ae.predict(X), "score_samples": ae.score_samples(X),
           "inverse_transform": ae.inverse_transform(ae.transform(X)[:700])}
    ae.set_params(n_threads=None)  # every CPU available
    many = {"transform": ae.transform(X), "predict": ae.predict(X), "score_samples": ae.score_samples(X),
            "inverse_transform": ae.inverse_transform(one["transform"][:700])}
    for name in one:
        assert np.array_equal(one[name], many[name]), name
    bad = X.copy()
    bad[1500, 7] = np.nan
    bad[300, 2] = np.inf
    for call in (ae.transform, ae.predict):  # (score_samples checks [0, 1] in NumPy first)
        try:
            call(bad)
        except ValueError as e:
            assert "row 300, column 2" in str(e), str(e)
        else:
            raise AssertionError("no error for non-finite input")


def test_a_rows_outputs_do_not_depend_on_the_other_rows_of_the_call():
    # Calls of 1 to 4 rows multiply each layer's weights in place (gemm_kernels.h: FewColumns),
    # larger ones through the packed kernels; either way a row's outputs are the same bits.
    import numpy as np

    from fastae import Autoencoder
    rng = np.random.default_rng(4)
    dense = rng.uniform(size=(40, 300)).astype(np.float32)
    sparse = dense * (rng.uniform(size=dense.shape) < 0.15)  # the first layer's sparse path
    for X in (dense, sparse):
        ae = Autoencoder(hidden_layer_sizes=(150, 37, 9), epochs=2, random_state=0, n_threads=1).fit(X)
        whole = {"transform": ae.transform(X), "predict": ae.predict(X), "score_samples": ae.score_samples(X)}
        codes = whole["transform"]
        decoded = ae.inverse_transform(codes)
        for size in (1, 2, 3, 4, 5, 9):
            for start in range(0, 40 - size, 7):
                rows = slice(start, start + size)
                for name, full in whole.items():
                    assert np.array_equal(getattr(ae, name)(X[rows]), full[rows]), (name, size, start)
                assert np.array_equal(ae.inverse_transform(codes[rows]), decoded[rows]), (size, start)


def test_the_kept_inference_team_serves_any_thread_count_and_a_forked_child():
    """Inference keeps its threads and workspaces from call to call (model_impl.h): calls with
    other thread counts, after an error, and in a process forked after the threads started (which
    has none of them) still give the serial results, and never hang (the child has a deadline)."""
    result = run_child("""
        import multiprocessing as mp
        X = data(3000, 24, 1)
        ae = Autoencoder(hidden_layer_sizes=(10, 3), epochs=1, random_state=0, n_threads=1).fit(X)
        want = ae.transform(X)
        same = []
        for threads in (2, 1, 2, 3, 2, None, 1):
            ae.set_params(n_threads=threads)
            same.append(bool(np.array_equal(ae.transform(X), want)))
        bad = X.copy(); bad[2100, 4] = np.nan
        try:
            ae.transform(bad)
            error = ""
        except ValueError as e:
            error = str(e)
        same.append(bool(np.array_equal(ae.transform(X), want)))  # the team survives the error
        ae.set_params(n_threads=2)
        ae.transform(X)  # the parent's team has two threads when it forks
        def child(q):
            q.put(bool(np.array_equal(ae.transform(X), want)))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start(); p.join(60)
        forked = q.get(timeout=5) if p.exitcode == 0 else None
        print(json.dumps({"same": same, "error": error, "child_exit": p.exitcode, "forked": forked}))
    """)
    assert all(result["same"]), result["same"]
    assert "row 2100, column 4" in result["error"]
    assert result["child_exit"] == 0 and result["forked"] is True
