use statetensor_hlo as _;
