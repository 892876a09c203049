"""hyperopt's ``hyperopt.plotting`` import path: the plots of ``distopt.monitor.plots``."""

from .monitor.plots import (  # noqa: F401
    PLOTS,
    main_plot_histogram,
    main_plot_history,
    main_plot_vars,
    plot_hist,
    plot_history,
    plot_curves,
    plot_params,
    trial_counts,
)
