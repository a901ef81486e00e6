"""A study's search algorithms and early stopping (the ``TrialSearch`` port) over Optuna's samplers and
pruners and scikit-optimize, for Katib's algorithm names and settings.

=====================  ===============================================  ==============================
Katib algorithm        library                                          settings (default)
=====================  ===============================================  ==============================
random                 optuna RandomSampler                             random_state
grid                   optuna GridSampler over Katib's grid             random_state (the grid's order)
tpe                    optuna TPESampler, constant liar                 n_startup_trials (10),
                                                                        n_ei_candidates (24),
                                                                        random_state
multivariate-tpe       optuna TPESampler(multivariate=True)             as tpe
cmaes                  optuna CmaEsSampler, warm-started each call      sigma, random_state;
                                                                        restart_strategy has no effect
sobol                  optuna QMCSampler(qmc_type="sobol", scrambled)   random_state
bayesianoptimization   scikit-optimize Optimizer                        base_estimator (GP),
                                                                        n_initial_points (10),
                                                                        acq_func (gp_hedge),
                                                                        acq_optimizer (auto),
                                                                        random_state
hyperband              optuna RandomSampler + HyperbandPruner           resource_name, eta (3), r_l
medianstop (early      optuna MedianPruner                              min_trials_required (3),
stopping)                                                               start_step (4)
=====================  ===============================================  ==============================

hyperband differs from Katib's: Katib's service runs its brackets itself, starting trials with a small
resource and re-running the best of them with η times more, the resource parameter set by the
algorithm. Here (Optuna's Hyperband, asynchronous successive halving in brackets) each trial is
started once with the whole resource r_l in the resource parameter, reports its objective as it goes
(one report per unit of resource), and the trials that are not among their bracket's best 1/η at a
rung (r_l/η^s_max · ηᵏ reports) are stopped early (EarlyStopped). The searched parameters are drawn at
random, as in Katib. Katib's r_l is kept as the most resource (R); the rungs reach down to
R/η^⌊log_η R⌋, the smallest resource Katib's brackets give.
"""

from .search import StudySearch

__all__ = ["StudySearch"]
