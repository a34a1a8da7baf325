"""Active learning (``mlip learn``): committee MD, selection by force uncertainty with a
diversity rule, labelling, retraining, in rounds (:mod:`mlip.learn.loop`)."""

from mlip.learn.config import LearnConfig
from mlip.learn.loop import Learner, run_learning
from mlip.learn.select import descriptor, select_frames

__all__ = ["LearnConfig", "Learner", "descriptor", "run_learning", "select_frames"]
