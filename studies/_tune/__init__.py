"""What sweeplab plugs into Ray Tune: the searcher on the driver, the trainables in the workers.

- on the driver, in Tune's event loop: :mod:`.searcher` (Ray's ``Searcher`` over the study
  database), composed of :mod:`.budget`, :mod:`.live` (heartbeats), :mod:`.curves` and
  :mod:`.outcomes`; :mod:`.progress`, the live view; :mod:`.pbt`, population based training's
  scheduler (and the Ray checkpoints its trials hand over);
- in the workers: :mod:`.trainable` (one trial) and :mod:`.packed` (several as one stacked
  model, each judged by :mod:`.member_asha`), set up alike by :mod:`.worker`;
- between them, the keys of the messages they exchange: :mod:`.messages`.

Everything here imports Ray; only a run (``sweeplab.studies._run``) pays for it.
"""
