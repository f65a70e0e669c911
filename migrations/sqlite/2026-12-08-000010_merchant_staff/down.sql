DROP TABLE merchant_staff_invites;
DROP TABLE merchant_staff;
