"""The app layer: everything the Streamlit pages share.

- :mod:`~camlab.app.state`: model entries with their lock and result cache; cached maps, readouts,
  evaluations and fine-tuning (no Streamlit);
- :mod:`~camlab.app.sources`: shipped, torchvision and uploaded models (no Streamlit);
- :mod:`~camlab.app.figures`: plotly figures; :mod:`~camlab.app.canvas`: the drawing widget's JSON;
- :mod:`~camlab.app.widgets`: Streamlit widgets, navigation and resource caching.
Pages import this layer and hold only widgets and layout.
"""
